"""sqlx's migrations: the ledger rules, the migrator over psql, and CREATE INDEX
CONCURRENTLY repair."""
