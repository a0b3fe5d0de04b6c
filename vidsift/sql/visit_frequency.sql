-- name: visit-frequency-distribution
-- description: How often visitors came over the last 7 days (opt-in visitors=true): the number of visitors with 1, 2, 3... visits, and the share of all visitors.
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH t AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM tracks
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
    AND visitor_id IS NOT NULL
),
per_visitor AS (
  SELECT visitor_id, count(*) AS visits
  FROM t
  WHERE copy_no = 1
  GROUP BY visitor_id
)
SELECT
  visits,
  count(*) AS visitors,
  round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS percent
FROM per_visitor
GROUP BY visits
ORDER BY visits
