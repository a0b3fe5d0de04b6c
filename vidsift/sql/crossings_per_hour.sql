-- name: crossings-per-hour
-- description: People in and out per camera, line and hour over the last 7 days (the crossings table: one row per person crossing a line, direction in or out).
-- The hour is the first 13 characters (yyyy-MM-ddTHH) of the crossing's capture time; a video
-- uploaded without a recording time has none, and its crossings count under their day (dt)
-- alone. A recount rewrites a video's rows with the same record_ids: each is counted once
-- (the copy of the latest day, should two days hold one).
WITH c AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY dt DESC) AS copy_no
  FROM crossings
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
)
SELECT
  camera_id,
  line,
  coalesce(substr(captured_at, 1, 13), dt) AS hour_utc,
  sum(CASE WHEN direction = 'in' THEN 1 ELSE 0 END) AS people_in,
  sum(CASE WHEN direction = 'out' THEN 1 ELSE 0 END) AS people_out
FROM c
WHERE copy_no = 1
GROUP BY camera_id, line, coalesce(substr(captured_at, 1, 13), dt)
ORDER BY hour_utc, camera_id, line
