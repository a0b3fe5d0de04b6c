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
//   queue_notifications.<stage>
//       The S3 QueueConfigurations that send the stage's source bucket's new objects to
//       its queue: for the raw bucket one per video suffix (S3 filters take one suffix
//       each), all under raw_upload_prefix; for the frames and people buckets the
//       frame_suffix only, so a video's summary.json next to its frames triggers nothing.

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

const queueNotifications = (stage) => {
  const queue = { 'Fn::GetAtt': [queueLogicalId(stage), 'Arn'] };
  const event = 's3:ObjectCreated:*';
  if (contract.stages[stage].source_bucket === 'raw') {
    return contract.video_suffixes.map((suffix) => ({
      Event: event,
      Queue: queue,
      Filter: filter([
        { Name: 'prefix', Value: contract.raw_upload_prefix },
        { Name: 'suffix', Value: suffix },
      ]),
    }));
  }
  return [
    { Event: event, Queue: queue, Filter: filter([{ Name: 'suffix', Value: contract.frame_suffix }]) },
  ];
};

const perStage = (fn) =>
  Object.fromEntries(Object.keys(contract.stages).map((stage) => [stage, fn(stage)]));

module.exports = {
  visibility_timeout_s: perStage((stage) => VISIBILITY_TIMEOUT_FACTOR * contract.stages[stage].timeout_s),
  queue_notifications: perStage(queueNotifications),
};
