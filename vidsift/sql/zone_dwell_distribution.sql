-- name: zone-dwell-distribution
-- description: How long people stay in each zone, per camera over the last 7 days: zone visits per dwell-time band (<10 s, 10-30 s, 30-60 s, 1-5 min, >5 min), with the share of the zone's visits and the zone's mean stay.
-- Dwell time is a visit's dwell_s (left_s minus entered_s, interpolated where the feet cross
-- the zone's edge). Bands are [from_s, to_s). Every band is listed for each zone, empty ones
-- with 0 (a median is not written the same in Athena and DuckDB: the mean is). A recount rewrites a video's rows with the same record_ids: each is counted once.
WITH z AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY dt DESC) AS copy_no
  FROM zone_visits
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
),
v AS (
  SELECT coalesce(camera_id, 'unknown') AS camera_id, zone, dwell_s
  FROM z
  WHERE copy_no = 1
    AND dwell_s IS NOT NULL
),
bands AS (
  SELECT *
  FROM (VALUES (1, '<10 s', 0, 10), (2, '10-30 s', 10, 30), (3, '30-60 s', 30, 60), (4, '1-5 min', 60, 300),
               (5, '>5 min', 300, CAST(NULL AS integer))) AS b (band_no, dwell, from_s, to_s)
),
zones AS (
  SELECT camera_id, zone, avg(dwell_s) AS mean_dwell_s
  FROM v
  GROUP BY camera_id, zone
)
SELECT
  s.camera_id,
  s.zone,
  b.band_no,
  b.dwell,
  b.from_s,
  b.to_s,
  count(v.dwell_s) AS visits,
  round(100.0 * count(v.dwell_s) / sum(count(v.dwell_s)) OVER (PARTITION BY s.camera_id, s.zone), 1) AS pct_of_zone,
  round(s.mean_dwell_s, 1) AS mean_dwell_s
FROM zones AS s
CROSS JOIN bands AS b
LEFT JOIN v
  ON v.camera_id = s.camera_id
  AND v.zone = s.zone
  AND v.dwell_s >= b.from_s
  AND (b.to_s IS NULL OR v.dwell_s < b.to_s)
GROUP BY s.camera_id, s.zone, b.band_no, b.dwell, b.from_s, b.to_s, s.mean_dwell_s
ORDER BY s.camera_id, s.zone, b.band_no
