-- The meetperry webhook receiver's table, as the original service's changeset.sql has it, and
-- the indexes its reports need; idempotent (run it on every start).
CREATE SCHEMA IF NOT EXISTS meetperry;

CREATE TABLE IF NOT EXISTS meetperry.task (
    id BIGSERIAL PRIMARY KEY,
    external_id text NOT NULL UNIQUE,
    user_id text NOT NULL,
    content text NOT NULL,
    completed_date timestamp with time zone NULL,
    deleted_date timestamp with time zone NULL,
    created_date timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    updated_date timestamp with time zone DEFAULT CURRENT_TIMESTAMP
);

-- When each event arrived (the server's clock at the write). A report lists an event in the window
-- of its own timestamp or of its arrival, whichever is later: an event sent late, with a
-- timestamp whose window's report is written already, is in the next report, never in none.
ALTER TABLE meetperry.task ADD COLUMN IF NOT EXISTS created_arrived timestamp with time zone;
ALTER TABLE meetperry.task ADD COLUMN IF NOT EXISTS completed_arrived timestamp with time zone;
ALTER TABLE meetperry.task ADD COLUMN IF NOT EXISTS deleted_arrived timestamp with time zone;

-- The report query reads a window of each of the three dates as reported (greatest() of the
-- event's timestamp and its arrival).
DROP INDEX IF EXISTS meetperry.task_created_date;
DROP INDEX IF EXISTS meetperry.task_completed_date;
DROP INDEX IF EXISTS meetperry.task_deleted_date;
CREATE INDEX IF NOT EXISTS task_created_reported ON meetperry.task ((greatest(created_date, created_arrived)));
CREATE INDEX IF NOT EXISTS task_completed_reported ON meetperry.task ((greatest(completed_date, completed_arrived)))
  WHERE completed_date IS NOT NULL;
CREATE INDEX IF NOT EXISTS task_deleted_reported ON meetperry.task ((greatest(deleted_date, deleted_arrived)))
  WHERE deleted_date IS NOT NULL;
