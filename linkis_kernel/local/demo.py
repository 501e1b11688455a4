"""The demo schema seeded into a new embedded server: a small, deterministic shop.

Everything is generated in SQL from row numbers (modulo and multiplication only), so every
fresh data dir holds exactly the same rows. The server keeps it in a database file of its own,
attached read-only as `demo` to each user's connection; `seed` creates it as a schema `demo`
in any connection (e.g. an in-memory one). Either way the SQL names `demo.<table>`.
"""

from __future__ import annotations

import duckdb

SCHEMA = "demo"

# `demo.<name>` is the schema `demo` where one exists, else the main schema of a database
# attached as `demo`: the same statements fill both.
TABLES_SQL = """
CREATE TABLE demo.customers (
    customer_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    email VARCHAR,
    country VARCHAR,
    segment VARCHAR,
    signup_date DATE,
    is_active BOOLEAN,
    lifetime_value DECIMAL(12, 2)
);
INSERT INTO demo.customers
SELECT i,
       'Customer ' || lpad(i::VARCHAR, 4, '0'),
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'customer' || i || '@example.com' END,
       (['CN', 'US', 'DE', 'FR', 'JP', 'BR', 'IN', 'GB'])[1 + i % 8],
       (['consumer', 'corporate', 'home office'])[1 + (i * 7) % 3],
       DATE '2020-01-01' + (i * 37) % 1500,
       i % 5 <> 0,
       CASE WHEN i % 11 = 0 THEN NULL ELSE ((i * 7919) % 500000) / 100 END
FROM (SELECT range::INTEGER AS i FROM range(1, 1001));

CREATE TABLE demo.products (
    product_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    category VARCHAR,
    unit_price DECIMAL(10, 2),
    launched_on DATE,
    discontinued BOOLEAN
);
INSERT INTO demo.products
SELECT i,
       (['Widget', 'Gadget', 'Gizmo', 'Doohickey', 'Sprocket'])[1 + i % 5] || ' ' || i,
       (['hardware', 'software', 'books', 'garden', 'toys'])[1 + (i * 3) % 5],
       (((i::BIGINT * 2654435761) % 20000) + 199) / 100,
       DATE '2019-06-01' + (i * 53) % 1800,
       i % 9 = 0
FROM (SELECT range::INTEGER AS i FROM range(1, 51));

CREATE TABLE demo.orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    ordered_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL,
    shipped_at TIMESTAMP,
    channel VARCHAR
);
INSERT INTO demo.orders
SELECT i,
       1 + (i * 31) % 1000,
       TIMESTAMP '2023-01-01 00:00:00' + to_seconds((i * 104729) % 31536000),
       (['delivered', 'delivered', 'delivered', 'shipped', 'cancelled', 'returned'])[1 + i % 6],
       CASE WHEN i % 6 IN (0, 1, 2, 3, 5)
            THEN TIMESTAMP '2023-01-01 00:00:00' + to_seconds((i * 104729) % 31536000)
                 + to_seconds(3600 * (12 + (i * 17) % 96))
       END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE (['web', 'mobile', 'store'])[1 + (i * 5) % 3] END
FROM (SELECT range::INTEGER AS i FROM range(1, 5001));

CREATE TABLE demo.order_items (
    item_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    discount DECIMAL(4, 2)
);
INSERT INTO demo.order_items
SELECT i,
       1 + (i - 1) // 3,
       1 + (i * 13 + (i - 1) // 3) % 50,
       1 + (i * 7) % 5,
       CASE WHEN i % 4 = 0 THEN ((i * 3) % 30) / 100 END
FROM (SELECT range::INTEGER AS i FROM range(1, 15001));

CREATE VIEW demo.order_totals AS
SELECT o.order_id, o.customer_id, o.ordered_at, o.status,
       sum(i.quantity * p.unit_price * (1 - coalesce(i.discount, 0)))::DECIMAL(12, 2) AS amount
FROM demo.orders o
JOIN demo.order_items i USING (order_id)
JOIN demo.products p USING (product_id)
GROUP BY ALL;

COMMENT ON TABLE demo.customers IS 'Shop customers (generated demo data)';
COMMENT ON COLUMN demo.customers.customer_id IS 'primary id';
COMMENT ON COLUMN demo.customers.email IS 'null for some customers';
COMMENT ON COLUMN demo.customers.lifetime_value IS 'total spent, in EUR';
COMMENT ON TABLE demo.products IS 'Products on sale';
COMMENT ON COLUMN demo.products.unit_price IS 'list price, in EUR';
COMMENT ON TABLE demo.orders IS 'One row per order';
COMMENT ON COLUMN demo.orders.shipped_at IS 'null until the order ships';
COMMENT ON TABLE demo.order_items IS 'Order lines: three per order';
COMMENT ON COLUMN demo.order_items.discount IS 'fraction off the list price, null for none';
COMMENT ON VIEW demo.order_totals IS 'Order amounts after discounts';
"""


def seed(conn: duckdb.DuckDBPyConnection) -> None:
    """Create and fill the demo schema in `conn`'s database, unless it already has one."""
    cursor = conn.cursor()
    try:
        exists = cursor.execute(
            "SELECT count(*) FROM duckdb_schemas()"
            " WHERE database_name = current_database() AND schema_name = ?",
            [SCHEMA],
        ).fetchone()
        if exists and exists[0]:
            return
        cursor.execute("BEGIN TRANSACTION")
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        cursor.execute(TABLES_SQL)
        cursor.execute("COMMIT")
    finally:
        cursor.close()
