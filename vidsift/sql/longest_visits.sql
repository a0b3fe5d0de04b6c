-- name: longest-visits
-- description: The 20 longest visits (person tracks) of the last 7 days, with when and where, and the face attributes of each (best face's age range, gender and emotion, and the known person matched).
-- best_frame_key locates the visit's best frame in the people bucket; best_box is the person in it.
-- The face columns are null for a visit without a face found.
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH t AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM tracks
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
    AND duration_s IS NOT NULL
)
SELECT
  camera_id,
  coalesce(captured_at_first, processed_at) AS seen_at,
  video_id,
  track_id,
  first_seen_s,
  last_seen_s,
  duration_s,
  frames,
  faces,
  matched_name,
  match_similarity,
  age_low,
  age_high,
  gender,
  top_emotion,
  best_frame_key,
  best_box,
  source_key
FROM t
WHERE copy_no = 1
ORDER BY duration_s DESC, record_id
LIMIT 20
