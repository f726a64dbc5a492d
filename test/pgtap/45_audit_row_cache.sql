-- The audit trigger's per-table cache (audit_table_cache.c) and the TRUNCATE
-- row count: row images by type, a cache that follows ALTER TABLE, renames of
-- the table and its schema, savepoints and failing statements, nested audited
-- writes, and exact counts of the rows a TRUNCATE removes.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(19);

CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 20);
CREATE TABLE typed (
    id      int PRIMARY KEY,
    t       text,
    vc      varchar(8),
    ch      char(4),
    d       short_text,
    j       json,
    jb      jsonb,
    f       float8,
    n       numeric,
    b       boolean,
    s       smallint,
    ts      timestamptz
);
SELECT brandbos.enable_audit('typed');
INSERT INTO typed VALUES (1, 'tëxt "q"', 'vc', 'ab', 'dom', '{"b": 1, "a": [1, 2]}', '{"k": null}',
                          'NaN', 1.50, true, 7, '2024-01-02 03:04:05+00');
SELECT is((SELECT details -> 'new' FROM brandbos.audit_log WHERE resource_type = 'public.typed'),
          jsonb_build_object('id', 1, 't', 'tëxt "q"', 'vc', 'vc', 'ch', 'ab  ', 'd', 'dom',
                             'j', '{"b": 1, "a": [1, 2]}'::jsonb, 'jb', '{"k": null}'::jsonb,
                             'f', 'NaN', 'n', 1.50, 'b', true, 's', 7,
                             'ts', '2024-01-02 03:04:05+00'::timestamptz::text),
          'each type maps as before: text-like values as stored (char padded), json nested, NaN a string');
UPDATE typed SET t = NULL, n = 2 WHERE id = 1;
SELECT is((SELECT details -> 'changed' FROM brandbos.audit_log
            WHERE resource_type = 'public.typed' AND action = 'update'),
          '["t", "n"]'::jsonb, 'an UPDATE lists the changed columns in column order');
SELECT is((SELECT details -> 'old' ->> 't' FROM brandbos.audit_log
            WHERE resource_type = 'public.typed' AND action = 'update'),
          'tëxt "q"', 'the old image holds the old value');
SELECT is((SELECT details -> 'new' -> 't' FROM brandbos.audit_log
            WHERE resource_type = 'public.typed' AND action = 'update'),
          'null'::jsonb, 'a NULL is a JSON null');

-- the cache follows ALTER TABLE within one transaction
ALTER TABLE typed ALTER COLUMN s TYPE text;
INSERT INTO typed (id, s) VALUES (2, '8');
SELECT is((SELECT details -> 'new' -> 's' FROM brandbos.audit_log
            WHERE resource_type = 'public.typed' AND resource_id = '2'),
          '"8"'::jsonb, 'after ALTER COLUMN TYPE the column maps as its new type');
ALTER TABLE typed DROP COLUMN vc;
ALTER TABLE typed ADD COLUMN extra int DEFAULT 5;
INSERT INTO typed (id) VALUES (3);
SELECT is((SELECT (details -> 'new') ? 'vc' FROM brandbos.audit_log
            WHERE resource_type = 'public.typed' AND resource_id = '3'),
          false, 'a dropped column is not in the image');
SELECT is((SELECT details -> 'new' -> 'extra' FROM brandbos.audit_log
            WHERE resource_type = 'public.typed' AND resource_id = '3'),
          '5'::jsonb, 'an added column is');

-- renames of the table and of its schema
CREATE SCHEMA s1;
CREATE TABLE s1.named (id int PRIMARY KEY, v text);
SELECT brandbos.enable_audit('s1.named');
INSERT INTO s1.named VALUES (1, 'a');
ALTER TABLE s1.named RENAME TO "Renamed";
SAVEPOINT before_rename;
INSERT INTO s1."Renamed" VALUES (2, 'b');
ROLLBACK TO before_rename;
INSERT INTO s1."Renamed" VALUES (3, 'c');
ALTER SCHEMA s1 RENAME TO s2;
INSERT INTO s2."Renamed" VALUES (4, 'd');
SELECT results_eq($$SELECT resource_type, resource_id FROM brandbos.audit_log
                    WHERE action = 'insert' AND resource_type ~ '^s[12]\.' ORDER BY id$$,
                  $$VALUES ('s1.named'::text, '1'::text), ('s1."Renamed"', '3'), ('s2."Renamed"', '4')$$,
                  'resource_type follows a table rename and a schema rename');

-- composite keys
CREATE TABLE composite (a int, b text, c boolean, v text, PRIMARY KEY (a, b, c));
SELECT brandbos.enable_audit('composite');
INSERT INTO composite VALUES (1, 'x"y', true, 'v');
SELECT is((SELECT resource_id FROM brandbos.audit_log WHERE resource_type = 'public.composite'),
          '[1,"x\"y",true]', 'a composite key is a compact JSON array');

-- savepoints and failing statements: nothing lost, nothing extra
CREATE TABLE multi (id int PRIMARY KEY, v text);
SELECT brandbos.enable_audit('multi');
INSERT INTO multi VALUES (1, 'one');
SAVEPOINT sp;
INSERT INTO multi VALUES (2, 'two'), (3, 'three');
ROLLBACK TO sp;
INSERT INTO multi VALUES (4, 'four'), (5, 'five');
SAVEPOINT sp2;
SELECT throws_ok($$INSERT INTO multi VALUES (6, 'six'), (7, 'seven'), (1, 'duplicate')$$, '23505', NULL,
                 'a multi-row INSERT failing on its third row fails');
ROLLBACK TO sp2;
INSERT INTO multi SELECT g, 'g' || g FROM generate_series(10, 14) g;
SELECT results_eq($$SELECT resource_id::int FROM brandbos.audit_log
                    WHERE resource_type = 'public.multi' ORDER BY id$$,
                  $$VALUES (1), (4), (5), (10), (11), (12), (13), (14)$$,
                  'exactly the committed rows are recorded, in order');
SELECT is((SELECT count(*)::int FROM multi), 8, 'and the table holds the same rows');

-- an audited write inside the statement of another audited write
CREATE TABLE outer_t (id int PRIMARY KEY, v text);
CREATE TABLE inner_t (id int PRIMARY KEY, outer_id int);
SELECT brandbos.enable_audit('outer_t');
SELECT brandbos.enable_audit('inner_t');
CREATE FUNCTION copy_to_inner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inner_t VALUES (NEW.id * 10, NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER a_copy AFTER INSERT ON outer_t FOR EACH ROW EXECUTE FUNCTION copy_to_inner();
INSERT INTO outer_t VALUES (1, 'a'), (2, 'b');
SELECT results_eq($$SELECT resource_type, resource_id FROM brandbos.audit_log
                    WHERE resource_type IN ('public.outer_t', 'public.inner_t') ORDER BY resource_type, resource_id$$,
                  $$VALUES ('public.inner_t'::text, '10'::text), ('public.inner_t', '20'),
                           ('public.outer_t', '1'), ('public.outer_t', '2')$$,
                  'both tables record their rows');
SELECT is((SELECT count(*)::int FROM brandbos.audit_log
            WHERE resource_type = 'public.inner_t' AND details -> 'new' ->> 'outer_id' IS NOT NULL), 2,
          'the nested rows carry their own images');

-- TRUNCATE counts exactly the rows its snapshot sees
CREATE TABLE counted (id int PRIMARY KEY, pad text);
SELECT brandbos.enable_audit('counted');
INSERT INTO counted SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g;
DELETE FROM counted WHERE id % 7 = 0;
UPDATE counted SET pad = 'y' WHERE id % 5 = 0;
SAVEPOINT sp3;
INSERT INTO counted VALUES (100000, 'gone');
ROLLBACK TO sp3;
TRUNCATE counted;
SELECT is((SELECT details FROM brandbos.audit_log
            WHERE action = 'truncate' AND resource_type = 'public.counted'),
          jsonb_build_object('row_count', 3000 - 3000 / 7),
          'dead, updated and rolled-back rows are not counted');
TRUNCATE counted;
SELECT is((SELECT details FROM brandbos.audit_log
            WHERE action = 'truncate' AND resource_type = 'public.counted' ORDER BY id DESC LIMIT 1),
          '{"row_count": 0}'::jsonb, 'an empty table counts 0');

CREATE TABLE parted (id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES IN (2);
SELECT brandbos.enable_audit('parted');
INSERT INTO parted SELECT g, 1 + g % 2 FROM generate_series(1, 101) g;
TRUNCATE parted;
SELECT is((SELECT details FROM brandbos.audit_log
            WHERE action = 'truncate' AND resource_type = 'public.parted'),
          '{"row_count": 101}'::jsonb, 'a partitioned table counts its partitions'' rows');

-- the row images are still verified by the chain
SELECT is((SELECT count(*)::int FROM brandbos.audit_log WHERE length(leaf_hash) <> 32), 0,
          'every row is hashed');
SELECT is((SELECT count(DISTINCT id)::int = count(*)::int FROM brandbos.audit_log), true,
          'ids are unique');

SELECT * FROM finish();
ROLLBACK;
