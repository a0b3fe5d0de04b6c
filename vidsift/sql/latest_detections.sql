-- name: latest-detections
-- description: The 50 latest frames with people (by capture time, else processing time) and how many faces were kept in each.
-- Firehose delivers at least once: faces are counted by distinct record_id, frames once each.
WITH p AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM people
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
    AND person_count > 0
)
SELECT
  p.camera_id,
  coalesce(p.captured_at, p.processed_at) AS seen_at,
  p.video_id,
  p.frame_index,
  p.person_count,
  count(DISTINCT f.record_id) AS faces,
  p.frame_key
FROM p
LEFT JOIN faces AS f
  ON f.video_id = p.video_id
  AND f.frame_index = p.frame_index
  AND f.dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
WHERE p.copy_no = 1
GROUP BY p.camera_id, coalesce(p.captured_at, p.processed_at), p.video_id, p.frame_index, p.person_count,
  p.frame_key
ORDER BY seen_at DESC, p.camera_id, p.video_id, p.frame_index
LIMIT 50
