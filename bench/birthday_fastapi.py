#!/usr/bin/python3
"""The hello-birthday API on the seed's own stack, as the peer bench/run-systems-benchmark measures
etl-host against: FastAPI + asyncpg under uvicorn (httptools, uvloop), the same table, the same
two statements and the same rules as pipelines/birthday-api.json (usernames letters only, dates
exactly YYYY-MM-DD and before today in UTC).

    DB_HOST=... DB_PORT=... DB_USER=... DB_PASS=... DB_NAME=... \
      /usr/bin/python3 -m uvicorn --app-dir bench birthday_fastapi:app \
        --workers 2 --http httptools --loop uvloop --port PORT

Each worker holds a pool of POOL_SIZE connections (default 10, asyncpg's own default).
"""
import datetime
import os
import re

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

USERNAME = re.compile(r"^[A-Za-z]+$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SAVE = ("INSERT INTO hello_users (username, date_of_birth) VALUES ($1, $2::date) "
        "ON CONFLICT (username) DO UPDATE SET date_of_birth = EXCLUDED.date_of_birth")
GREET = ("SELECT hello_message(username, date_of_birth, (now() AT TIME ZONE 'UTC')::date) AS message "
         "FROM hello_users WHERE username = $1")

app = FastAPI()
pool = None


@app.on_event("startup")
async def connect():
    global pool
    pool = await asyncpg.create_pool(
        host=os.environ["DB_HOST"], port=int(os.environ.get("DB_PORT", "5432")), user=os.environ["DB_USER"],
        password=os.environ.get("DB_PASS") or None, database=os.environ["DB_NAME"],
        ssl=os.environ.get("DB_SSLMODE", "prefer"), min_size=1, max_size=int(os.environ.get("POOL_SIZE", "10")))


def refused(message):
    return JSONResponse({"error": message}, status_code=400)


@app.put("/hello/{username}")
async def save(username: str, request: Request):
    if not USERNAME.match(username) or len(username) > 100:
        return refused("username must be letters only")
    try:
        body = await request.json()
        text = body["dateOfBirth"]
        if not isinstance(text, str) or not DATE.match(text):
            raise ValueError
        date = datetime.date.fromisoformat(text)
    except (ValueError, KeyError, TypeError):
        return refused("dateOfBirth must be a date YYYY-MM-DD")
    if date >= datetime.datetime.now(datetime.timezone.utc).date():
        return refused("dateOfBirth must be before today")
    async with pool.acquire() as connection:
        await connection.execute(SAVE, username, date)
    return Response(status_code=204)


@app.get("/hello/{username}")
async def greet(username: str):
    if not USERNAME.match(username) or len(username) > 100:
        return refused("username must be letters only")
    async with pool.acquire() as connection:
        message = await connection.fetchval(GREET, username)
    if message is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return {"message": message}
