-- name: frames-with-most-people
-- description: The 20 frames with the most people over the last 7 days, most confident first among equals.
-- frame_key locates the JPEG (people bucket when person_count > 0).
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH p AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM people
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
    AND person_count > 0
)
SELECT
  camera_id,
  video_id,
  frame_index,
  frame_time_s,
  captured_at,
  person_count,
  max_confidence,
  frame_key,
  source_key
FROM p
WHERE copy_no = 1
ORDER BY person_count DESC, max_confidence DESC, record_id
LIMIT 20
