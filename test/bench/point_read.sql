-- pgbench script: read one row's decrypted token by primary key.  run.sh passes the relation
-- (a <table>_decrypted view, a peer's decrypting view, or the plaintext table) as tbl and its
-- row count as rows; ids are 1..rows (the tables are loaded after TRUNCATE ... RESTART IDENTITY).
\set id random(1, :rows)
SELECT refresh_token FROM :tbl WHERE id = :id;
