-- Events per minute for the last hour (by event time).
SELECT date_trunc('minute', event_time) AS minute, count(*) AS events
FROM events
WHERE event_time >= TIMESTAMPTZ '{{NOW}}' - INTERVAL '1 hour'
  AND event_time < TIMESTAMPTZ '{{NOW}}'
GROUP BY 1
ORDER BY 1
