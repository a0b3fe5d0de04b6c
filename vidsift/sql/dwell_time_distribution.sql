-- name: dwell-time-distribution
-- description: How long people stay, per camera over the last 7 days: visits (person tracks) per dwell-time band (<10 s, 10-30 s, 30-60 s, 1-5 min, >5 min), with the share of the camera's visits.
-- Dwell time is a track's duration_s (last minus first time seen). Bands are [from_s, to_s):
-- a 10 s visit is in 10-30 s. Every band is listed for each camera, empty ones with 0.
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH t AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM tracks
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
),
v AS (
  SELECT coalesce(camera_id, 'unknown') AS camera_id, duration_s
  FROM t
  WHERE copy_no = 1
    AND duration_s IS NOT NULL
),
bands AS (
  SELECT *
  FROM (VALUES (1, '<10 s', 0, 10), (2, '10-30 s', 10, 30), (3, '30-60 s', 30, 60), (4, '1-5 min', 60, 300),
               (5, '>5 min', 300, CAST(NULL AS integer))) AS b (band_no, dwell, from_s, to_s)
),
cameras AS (
  SELECT DISTINCT camera_id FROM v
)
SELECT
  c.camera_id,
  b.band_no,
  b.dwell,
  b.from_s,
  b.to_s,
  count(v.duration_s) AS visits,
  round(100.0 * count(v.duration_s) / sum(count(v.duration_s)) OVER (PARTITION BY c.camera_id), 1) AS pct_of_camera
FROM cameras AS c
CROSS JOIN bands AS b
LEFT JOIN v
  ON v.camera_id = c.camera_id
  AND v.duration_s >= b.from_s
  AND (b.to_s IS NULL OR v.duration_s < b.to_s)
GROUP BY c.camera_id, b.band_no, b.dwell, b.from_s, b.to_s
ORDER BY c.camera_id, b.band_no
