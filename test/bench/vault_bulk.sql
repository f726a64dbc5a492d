-- Vault peer of tce_bulk.sql: :rows secrets in one statement (:"tbl" is not used).
SELECT count(vault.create_secret(left(repeat(md5(random()::text), 7), 200)))
  FROM generate_series(1, :rows) AS g \g /dev/null
