-- Funnel: users who viewed a product, then (at or after their first view) added one to the
-- cart, then (at or after that) completed an order.
WITH viewed AS (
  SELECT user_id, min(event_time) AS t
  FROM events
  WHERE event = 'Product Viewed'
  GROUP BY user_id
), added AS (
  SELECT e.user_id, min(e.event_time) AS t
  FROM events e JOIN viewed v ON e.user_id = v.user_id
  WHERE e.event = 'Product Added' AND e.event_time >= v.t
  GROUP BY e.user_id
), ordered AS (
  SELECT DISTINCT e.user_id
  FROM events e JOIN added a ON e.user_id = a.user_id
  WHERE e.event = 'Order Completed' AND e.event_time >= a.t
)
SELECT (SELECT count(*) FROM viewed) AS viewed,
       (SELECT count(*) FROM added) AS added,
       (SELECT count(*) FROM ordered) AS ordered
