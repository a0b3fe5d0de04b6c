-- name: busiest-hour-per-zone
-- description: For each camera and zone, the hour of the day (UTC, over the last 7 days) in which the most zone visits began, with their number and mean dwell time.
-- The hour is characters 12-13 of the visit's capture time at entering; visits of videos
-- uploaded without a recording time have none and are left out. Ties: the earlier hour.
-- A recount rewrites a video's rows with the same record_ids: each is counted once.
WITH z AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY dt DESC) AS copy_no
  FROM zone_visits
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
),
h AS (
  SELECT
    camera_id,
    zone,
    substr(captured_at_entered, 12, 2) AS hour_utc,
    count(*) AS visits,
    round(avg(dwell_s), 1) AS mean_dwell_s
  FROM z
  WHERE copy_no = 1
    AND captured_at_entered IS NOT NULL
  GROUP BY camera_id, zone, substr(captured_at_entered, 12, 2)
),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY camera_id, zone ORDER BY visits DESC, hour_utc) AS rank_no
  FROM h
)
SELECT camera_id, zone, hour_utc, visits, mean_dwell_s
FROM ranked
WHERE rank_no = 1
ORDER BY camera_id, zone
