-- The table pipelines/cdc-replicate.json replicates: run it on the source and on the target.
-- The source also needs wal_level = logical and a role with REPLICATION for SOURCE_DB_USER.
CREATE TABLE IF NOT EXISTS items (
  id   int PRIMARY KEY,
  name text,
  qty  int NOT NULL DEFAULT 0
);
