-- The same count, :loops times in one PL/pgSQL loop (its plan is prepared once, like an
-- application's prepared statement): one index-assisted count of 1000 rows takes tens of
-- microseconds, far less than a client round trip, so one statement alone would time the
-- round trip.  Set by run.sh: tbl, filter (as in tenant_count.sql) and loops.
SELECT format('DO $bench$ BEGIN FOR i IN 1..%s LOOP PERFORM count(*) FROM %I WHERE %s; END LOOP; END $bench$',
              :loops, :'tbl', :'filter') \gexec
