-- name: age-gender-distribution
-- description: Faces of the last 7 days per gender and ten-year age band (band of the middle of Rekognition's estimated age range).
-- Firehose delivers at least once: each record_id is counted once (its first copy).
WITH f AS (
  SELECT *, row_number() OVER (PARTITION BY record_id ORDER BY processed_at) AS copy_no
  FROM faces
  WHERE dt >= CAST(CAST(current_date - INTERVAL '7' DAY AS date) AS varchar)
    AND age_low IS NOT NULL
    AND age_high IS NOT NULL
)
SELECT
  coalesce(gender, 'Unknown') AS gender,
  CAST(floor((age_low + age_high) / 20.0) * 10 AS integer) AS age_from,
  CAST(floor((age_low + age_high) / 20.0) * 10 + 9 AS integer) AS age_to,
  count(*) AS faces
FROM f
WHERE copy_no = 1
GROUP BY coalesce(gender, 'Unknown'), CAST(floor((age_low + age_high) / 20.0) * 10 AS integer),
  CAST(floor((age_low + age_high) / 20.0) * 10 + 9 AS integer)
ORDER BY gender, age_from
