WITH history AS (
  SELECT c.customer_id,
         COUNT(*) AS tx_count_90d,
         SUM(t.amount) AS tx_sum_90d,
         AVG(t.quantity) AS quantity_avg_90d,
         MAX(t.discount) AS discount_max_90d
  FROM customers c
  JOIN transactions t ON t.customer_id = c.customer_id
  WHERE t.ts < c.as_of AND t.ts >= c.as_of - INTERVAL '90 days'
  GROUP BY c.customer_id
)
SELECT c.customer_id, c.segment, c.region, c.income, c.age, c.tenure_days, c.credit_score,
       c.products, c.has_card, c.channel, c.as_of, c.churned,
       COALESCE(h.tx_count_90d, 0) AS tx_count_90d,
       COALESCE(h.tx_sum_90d, 0.0) AS tx_sum_90d,
       h.quantity_avg_90d, h.discount_max_90d,
       c.income - AVG(c.income) OVER (PARTITION BY c.segment) AS income_vs_segment
FROM customers c
LEFT JOIN history h ON h.customer_id = c.customer_id
