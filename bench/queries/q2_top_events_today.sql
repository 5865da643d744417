-- Top 10 track events today (UTC).
SELECT event, count(*) AS events
FROM events
WHERE type = 'track'
  AND event_time >= date_trunc('day', TIMESTAMPTZ '{{NOW}}')
  AND event_time < TIMESTAMPTZ '{{NOW}}'
GROUP BY event
ORDER BY events DESC, event
LIMIT 10
