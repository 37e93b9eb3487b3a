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

-- The report query reads a window of each of the three dates.
CREATE INDEX IF NOT EXISTS task_created_date ON meetperry.task (created_date);
CREATE INDEX IF NOT EXISTS task_completed_date ON meetperry.task (completed_date) WHERE completed_date IS NOT NULL;
CREATE INDEX IF NOT EXISTS task_deleted_date ON meetperry.task (deleted_date) WHERE deleted_date IS NOT NULL;
