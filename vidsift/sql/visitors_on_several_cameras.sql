-- name: visitors-on-several-cameras
-- description: Visitors seen on more than one camera over the last 7 days (opt-in visitors=true): how many cameras (the first and last in name order), visits, first and last seen.
-- Names given later (vidsift visitors name) join on visitor_id: LEFT JOIN visitor_names USING (visitor_id).
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH t AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM tracks
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
    AND visitor_id IS NOT NULL
)
SELECT
  visitor_id,
  count(DISTINCT camera_id) AS cameras,
  min(camera_id) AS first_camera,
  max(camera_id) AS last_camera,
  count(*) AS visits,
  min(coalesce(captured_at_first, processed_at)) AS first_seen,
  max(coalesce(captured_at_first, processed_at)) AS last_seen
FROM t
WHERE copy_no = 1
GROUP BY visitor_id
HAVING count(DISTINCT camera_id) > 1
ORDER BY cameras DESC, visits DESC, visitor_id
