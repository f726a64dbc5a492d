-- pgbench script, Vault peer of tce_insert.sql: one secret (the same 200-character token) per
-- transaction through vault.create_secret.  :tbl is passed by run.sh but not used.
SELECT vault.create_secret(left(repeat(md5(random()::text), 7), 200));
