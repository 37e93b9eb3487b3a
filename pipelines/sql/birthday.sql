-- The hello-birthday API's table and its one function; idempotent (run it on every start).
-- "Today" is the UTC date, for the table's check, the greeting and the API's own rules alike
-- (validate's today: UTC), whatever time zone the server or etl-host runs in.
CREATE TABLE IF NOT EXISTS hello_users (
  username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z]+$'),
  date_of_birth date NOT NULL CONSTRAINT hello_users_date_of_birth_check
                CHECK (date_of_birth < (now() AT TIME ZONE 'UTC')::date)
);
-- A table made before "today" was UTC gets the check that says so.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'hello_users_date_of_birth_check'
             AND pg_get_constraintdef(oid) NOT LIKE '%UTC%') THEN
    ALTER TABLE hello_users DROP CONSTRAINT hello_users_date_of_birth_check;
    ALTER TABLE hello_users ADD CONSTRAINT hello_users_date_of_birth_check
      CHECK (date_of_birth < (now() AT TIME ZONE 'UTC')::date) NOT VALID;
  END IF;
END $$;

-- The birthday in year `y`. Someone born on 29 February has it on 28 February in years that
-- have no 29th (the common legal convention).
CREATE OR REPLACE FUNCTION hello_birthday_in(dob date, y int) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
  SELECT make_date(y, extract(month FROM dob)::int,
                   CASE WHEN extract(month FROM dob) = 2 AND extract(day FROM dob) = 29
                             AND NOT (y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0))
                        THEN 28 ELSE extract(day FROM dob)::int END)
$$;

-- The next birthday on or after `today`. Each of these functions is one expression, so
-- PostgreSQL inlines them into the query that calls them (planned once with it, not per call).
CREATE OR REPLACE FUNCTION hello_next_birthday(dob date, today date) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN hello_birthday_in(dob, extract(year FROM today)::int) >= today
              THEN hello_birthday_in(dob, extract(year FROM today)::int)
              ELSE hello_birthday_in(dob, extract(year FROM today)::int + 1) END
$$;

-- The greeting for a user, as the API answers it. STABLE, not IMMUTABLE: text || integer is a
-- stable operator, and PostgreSQL inlines a function only into one no less volatile than its body.
CREATE OR REPLACE FUNCTION hello_message(name text, dob date, today date) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN hello_next_birthday(dob, today) = today
              THEN 'Hello, ' || name || '! Happy birthday!'
              ELSE 'Hello, ' || name || '! Your birthday is in ' || (hello_next_birthday(dob, today) - today) || ' day(s)' END
$$;
