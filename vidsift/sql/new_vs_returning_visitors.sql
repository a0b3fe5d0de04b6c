-- name: new-vs-returning-visitors-per-day
-- description: Visitors per day over the last 7 days (opt-in visitors=true): new ones (their first visit that day), returning ones (a later visit), and the visits with no visitor id (no usable face, or visitors off).
-- A visitor is a person recognised across visits by their face (visitor_id); a visit is one track.
-- Days are the recording day when known, else the processing day.
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH t AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM tracks
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
)
SELECT
  substr(coalesce(captured_at_first, processed_at), 1, 10) AS day,
  count(DISTINCT CASE WHEN visit_number = 1 THEN visitor_id END) AS new_visitors,
  count(DISTINCT CASE WHEN visit_number > 1 THEN visitor_id END) AS returning_visitors,
  count(*) AS visits,
  count(*) - count(visitor_id) AS visits_without_visitor
FROM t
WHERE copy_no = 1
GROUP BY substr(coalesce(captured_at_first, processed_at), 1, 10)
ORDER BY day
