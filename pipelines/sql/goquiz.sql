-- The goquiz CSV loader's and API integrator's table; idempotent (run it on every start).
-- A customer is sent once: sent_at is set only when the API said 2xx. A customer the API
-- refused for good (4xx) keeps the reason in send_error and is not sent again.
CREATE TABLE IF NOT EXISTS customers (
  id          text PRIMARY KEY CHECK (id <> ''),
  name        text NOT NULL,
  email       text NOT NULL,
  phone       text,
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz,
  send_error  text
);

-- What the integrator's query reads: the customers still to send, oldest first.
CREATE INDEX IF NOT EXISTS customers_unsent ON customers (loaded_at, id) WHERE sent_at IS NULL AND send_error IS NULL;

-- The loader's inserts wake the integrator (LISTEN customers_new) instead of it polling.
CREATE OR REPLACE FUNCTION customers_notify_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('customers_new', '');
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS customers_notify_new ON customers;
CREATE TRIGGER customers_notify_new AFTER INSERT ON customers
  FOR EACH STATEMENT EXECUTE FUNCTION customers_notify_new();
