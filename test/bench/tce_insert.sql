-- pgbench script: one single-row INSERT of a 200-character token.
-- run.sh passes the table with -D tbl=...; the token is generated the same way
-- (server side, same functions) for every table, so only the table differs.
\set uid random(1, 1000000)
INSERT INTO :tbl (user_id, refresh_token) VALUES (:uid, left(repeat(md5(random()::text), 7), 200));
