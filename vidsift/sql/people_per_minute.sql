-- name: people-per-minute-per-camera
-- description: People seen per camera and minute over the last 7 days: frames analysed, the most people in one frame, and the mean per frame.
-- Portable between Athena (Trino) and DuckDB: timestamps are ISO-8601 UTC strings, so the
-- minute is their first 16 characters (yyyy-MM-ddTHH:mm). A video uploaded without a
-- recording time has no captured_at; its frames count at their processing time.
-- dt is the processing day; widen the window to look further back.
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH p AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM people
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
)
SELECT
  camera_id,
  substr(coalesce(captured_at, processed_at), 1, 16) AS minute_utc,
  count(*) AS frames,
  max(person_count) AS max_people,
  round(avg(person_count), 2) AS mean_people
FROM p
WHERE copy_no = 1
GROUP BY camera_id, substr(coalesce(captured_at, processed_at), 1, 16)
ORDER BY minute_utc, camera_id
