-- The hello-birthday API's table and its one function; idempotent (run it on every start).
CREATE TABLE IF NOT EXISTS hello_users (
  username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z]+$'),
  date_of_birth date NOT NULL CHECK (date_of_birth < current_date)
);

-- The next birthday on or after `today`. Someone born on 29 February has it on 28 February in
-- years that have no 29th (the common legal convention).
CREATE OR REPLACE FUNCTION hello_next_birthday(dob date, today date) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
  WITH years(y) AS (VALUES (extract(year FROM today)::int), (extract(year FROM today)::int + 1)),
  candidates AS (
    SELECT CASE WHEN extract(month FROM dob) = 2 AND extract(day FROM dob) = 29
                     AND NOT (y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0))
                THEN make_date(y, 2, 28)
                ELSE make_date(y, extract(month FROM dob)::int, extract(day FROM dob)::int) END AS day
    FROM years)
  SELECT min(day) FROM candidates WHERE day >= today
$$;

-- The greeting for a user, as the API answers it.
CREATE OR REPLACE FUNCTION hello_message(name text, dob date, today date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN hello_next_birthday(dob, today) = today
              THEN 'Hello, ' || name || '! Happy birthday!'
              ELSE 'Hello, ' || name || '! Your birthday is in ' || (hello_next_birthday(dob, today) - today) || ' day(s)' END
$$;
