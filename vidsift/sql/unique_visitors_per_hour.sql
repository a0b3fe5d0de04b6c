-- name: unique-visitors-per-hour
-- description: Visitors per camera and hour over the last 7 days: person tracks (one per visit) that began in the hour, how many showed a face or matched a known person, and their mean and longest stay.
-- A visitor is one track: a person followed through one video (track_people). Someone who
-- leaves the view and comes back is two visits; known_people counts distinct matched names.
-- The hour is the first 13 characters (yyyy-MM-ddTHH) of the track's first capture time, or of
-- its processing time for a video uploaded without a recording time (UTC ISO-8601 strings,
-- so this works alike in Athena (Trino) and DuckDB).
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH t AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM tracks
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
)
SELECT
  camera_id,
  substr(coalesce(captured_at_first, processed_at), 1, 13) AS hour_utc,
  count(*) AS visitors,
  sum(CASE WHEN faces > 0 THEN 1 ELSE 0 END) AS with_face,
  count(DISTINCT matched_name) AS known_people,
  round(avg(duration_s), 1) AS mean_stay_s,
  max(duration_s) AS longest_stay_s
FROM t
WHERE copy_no = 1
GROUP BY camera_id, substr(coalesce(captured_at_first, processed_at), 1, 13)
ORDER BY hour_utc, camera_id
