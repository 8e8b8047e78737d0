-- Nothing to store: SQLite servers learn of writes by other processes by watching the database
-- files (Postgres servers by LISTEN, migration 0007 there). Kept so both backends count alike.
SELECT 1;
