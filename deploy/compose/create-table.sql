-- The token provider's table, created when the compose database starts for the first time.
CREATE TABLE secret_tokens (id SERIAL PRIMARY KEY, data text NOT NULL CHECK (data NOT LIKE '%-%'));
