-- Distinct users per day (UTC).
SELECT CAST(date_trunc('day', event_time) AS DATE) AS day, count(DISTINCT user_id) AS users
FROM events
GROUP BY 1
ORDER BY 1
