'use strict';

// Values serverless.yml needs that are computed from vidsift/contract.json, for the two
// things YAML and CloudFormation cannot do: arithmetic and a loop over a list. Read with
// `${file(./plugins/contract-values.js):<address>}`; the contract stays the only place a
// name or number is written, and tests/test_stack.py checks the compiled result.
//
//   visibility_timeout_s.<stage>
//       6 x stages.<stage>.timeout_s. AWS advises a queue that feeds a Lambda function to
//       hide a received message for six times the function's timeout, so a batch being
//       retried (throttling, partial failures) is not redelivered while still in flight.
//   bucket_notifications.<bucket role>
//       The bucket's S3 QueueConfigurations, for every stage it feeds (the rule of
//       vidsift.contract.notifications, which the local stack uses): a stage whose
//       source_bucket is raw gets one per video suffix (S3 filters take one suffix each),
//       all under raw_upload_prefix; a stage fed by the frames or people bucket gets the
//       frame_suffix only (under its source_prefix if it has one: analyze_faces hears of
//       the snapshots' copies only), so a video's summary.json next to its frames triggers
//       nothing; a stage without a source_bucket (track_people) gets none;
//       a stage with a snapshot_bucket also gets that bucket's edge snapshots
//       (snapshot_prefix + frame_suffix: the alert fast lane). The snapshot filter shares
//       the raw bucket with the video filters; S3 accepts that only because no video
//       suffix ends with the frame suffix (tests/test_contract.py checks it).

const fs = require('fs');
const path = require('path');

const VISIBILITY_TIMEOUT_FACTOR = 6;

const contract = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'vidsift', 'contract.json'), 'utf8')
);

// split_frames -> SplitFramesQueue: the logical id serverless.yml gives the stage's queue.
const queueLogicalId = (stage) =>
  `${stage
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('')}Queue`;

const filter = (rules) => ({ S3Key: { Rules: rules } });

const notification = (stage, prefix, suffix) => ({
  Event: 's3:ObjectCreated:*',
  Queue: { 'Fn::GetAtt': [queueLogicalId(stage), 'Arn'] },
  Filter: filter([
    ...(prefix === null ? [] : [{ Name: 'prefix', Value: prefix }]),
    { Name: 'suffix', Value: suffix },
  ]),
});

// [{bucket, config}] for every stage, in the contract's stage order.
const allNotifications = () =>
  Object.entries(contract.stages).flatMap(([stage, spec]) => {
    const out =
      spec.source_bucket === 'raw'
        ? contract.video_suffixes.map((suffix) => ({
            bucket: 'raw',
            config: notification(stage, contract.raw_upload_prefix, suffix),
          }))
        : spec.source_bucket
          ? [{ bucket: spec.source_bucket,
               config: notification(stage, spec.source_prefix ?? null, contract.frame_suffix) }]
          : [];
    if (spec.snapshot_bucket) {
      out.push({
        bucket: spec.snapshot_bucket,
        config: notification(stage, contract.snapshot_prefix, contract.frame_suffix),
      });
    }
    return out;
  });

const bucketNotifications = (role) =>
  allNotifications()
    .filter((n) => n.bucket === role)
    .map((n) => n.config);

const perStage = (fn) =>
  Object.fromEntries(Object.keys(contract.stages).map((stage) => [stage, fn(stage)]));

const perBucket = (fn) =>
  Object.fromEntries(Object.keys(contract.buckets).map((role) => [role, fn(role)]));

module.exports = {
  visibility_timeout_s: perStage((stage) => VISIBILITY_TIMEOUT_FACTOR * contract.stages[stage].timeout_s),
  bucket_notifications: perBucket(bucketNotifications),
};
