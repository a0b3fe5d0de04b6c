-- name: peak-occupancy
-- description: The most people in view at the same time, per camera and video over the last 7 days: the largest number of person tracks whose visits overlap, when it first happened, and the video's visitors.
-- A track is in view from first_seen_s to last_seen_s (both included: two people seen in the
-- same frame overlap). The most overlapping intervals always include one that starts at that
-- moment, so counting, at each track's start, the tracks of the same video in view then and
-- keeping the largest count gives the peak, without per-frame arrays (portable between Athena
-- (Trino) and DuckDB). peak_captured_at is the capture time of that moment (null without a
-- recording time); peak_at_s the time in the video.
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH t AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM tracks
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
),
v AS (
  SELECT record_id, video_id, camera_id, source_key, first_seen_s, last_seen_s, captured_at_first
  FROM t
  WHERE copy_no = 1
    AND first_seen_s IS NOT NULL
    AND last_seen_s IS NOT NULL
),
at_start AS (
  SELECT
    s.record_id,
    s.video_id,
    s.camera_id,
    s.source_key,
    s.first_seen_s AS at_s,
    s.captured_at_first AS at_captured,
    count(*) AS people
  FROM v AS s
  JOIN v AS x
    ON x.video_id = s.video_id
    AND x.first_seen_s <= s.first_seen_s
    AND x.last_seen_s >= s.first_seen_s
  GROUP BY s.record_id, s.video_id, s.camera_id, s.source_key, s.first_seen_s, s.captured_at_first
),
ranked AS (
  SELECT
    *,
    row_number() OVER (PARTITION BY camera_id, video_id ORDER BY people DESC, at_s, record_id) AS rank_no,
    count(*) OVER (PARTITION BY camera_id, video_id) AS visitors
  FROM at_start
)
SELECT
  camera_id,
  video_id,
  people AS peak_people,
  at_s AS peak_at_s,
  at_captured AS peak_captured_at,
  visitors,
  source_key
FROM ranked
WHERE rank_no = 1
ORDER BY peak_people DESC, camera_id, video_id
