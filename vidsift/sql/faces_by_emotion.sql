-- name: faces-by-emotion
-- description: Faces of the last 7 days counted by their most confident emotion, with the share of all faces and how many smile.
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH f AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM faces
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
)
SELECT
  coalesce(top_emotion, 'UNKNOWN') AS emotion,
  count(*) AS faces,
  round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct_of_faces,
  sum(CASE WHEN smile THEN 1 ELSE 0 END) AS smiling,
  round(avg(confidence), 2) AS mean_face_confidence
FROM f
WHERE copy_no = 1
GROUP BY coalesce(top_emotion, 'UNKNOWN')
ORDER BY faces DESC, emotion
