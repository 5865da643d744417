-- Property breakdown: product views and viewed value per product category.
SELECT properties->>'category' AS category,
       count(*) AS views,
       sum(CAST(properties->>'price' AS DECIMAL(12, 2))) AS viewed_value
FROM events
WHERE event = 'Product Viewed'
GROUP BY 1
ORDER BY views DESC, category
