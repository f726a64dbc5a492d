-- Count the rows of :"tbl" that pass :filter (the policy does the rest) and discard the
-- one-row result, so that only the server's work is timed.  Set by run.sh:
--   tbl     bench_tenant_plain | bench_tenant_rls | bench_tenant_supa
--   filter  tenant_id = 't0042' on the baseline, true under a policy
SELECT count(*) FROM :"tbl" WHERE :filter \g /dev/null
