-- name: net-occupancy
-- description: Net occupancy through each day over the last 7 days, per camera and line: in minus out in each hour, and the running total since the day began (how many are inside, counted at that line).
-- Only crossings with a capture time (videos uploaded with their recording time) have a place
-- in the day. The running total starts at 0 at midnight UTC: people already inside then are
-- not known. A recount rewrites a video's rows with the same record_ids: each is counted once.
WITH c AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY dt DESC) AS copy_no
  FROM crossings
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
),
h AS (
  SELECT
    camera_id,
    line,
    substr(captured_at, 1, 10) AS day_utc,
    substr(captured_at, 12, 2) AS hour_utc,
    sum(CASE WHEN direction = 'in' THEN 1 ELSE 0 END) AS people_in,
    sum(CASE WHEN direction = 'out' THEN 1 ELSE 0 END) AS people_out
  FROM c
  WHERE copy_no = 1
    AND captured_at IS NOT NULL
  GROUP BY camera_id, line, substr(captured_at, 1, 10), substr(captured_at, 12, 2)
)
SELECT
  camera_id,
  line,
  day_utc,
  hour_utc,
  people_in,
  people_out,
  sum(people_in - people_out) OVER (
    PARTITION BY camera_id, line, day_utc ORDER BY hour_utc ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
  ) AS net_occupancy
FROM h
ORDER BY camera_id, line, day_utc, hour_utc
