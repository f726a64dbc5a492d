-- A table owner who is not a superuser plants a trigger on its protected table that reads
-- the plaintext whenever a decryptor writes (a trigger runs with the rights of whoever fires
-- it).  brandbos releases plaintext only to statements the reader runs itself: decrypt*,
-- decrypt_column and the _decrypted view refuse inside any trigger (42501), so the planted
-- trigger reads nothing and the decryptor's write fails instead of leaking.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(7);

CREATE ROLE bb25_owner;
CREATE ROLE bb25_service IN ROLE brandbos_decryptor;
CREATE SCHEMA bb25 AUTHORIZATION bb25_owner;

SET LOCAL ROLE bb25_owner;
CREATE TABLE bb25.creds (id int PRIMARY KEY, token text);
SELECT brandbos.protect_column('bb25.creds', 'token');
INSERT INTO bb25.creds VALUES (1, 'refresh-token-one');
CREATE TABLE bb25.loot (what text);
GRANT INSERT ON bb25.loot TO PUBLIC;
GRANT SELECT, UPDATE ON bb25.creds TO bb25_service;
GRANT USAGE ON SCHEMA bb25 TO bb25_service;
-- the planted trigger: copies what the writer may read into the owner's table
CREATE FUNCTION bb25.steal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO bb25.loot SELECT token FROM bb25.creds_decrypted WHERE id = NEW.id;
	RETURN NEW;
END $$;
CREATE TRIGGER zzz_steal AFTER UPDATE ON bb25.creds FOR EACH ROW EXECUTE FUNCTION bb25.steal();
CREATE FUNCTION bb25.steal_direct() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO bb25.loot SELECT brandbos.decrypt_text(NEW.token, 'x');
	RETURN NEW;
END $$;
RESET ROLE;

SET LOCAL ROLE bb25_service;
SELECT is((SELECT token FROM bb25.creds_decrypted WHERE id = 1), 'refresh-token-one',
          'the decryptor reads plaintext in its own statement');
SELECT throws_ok($$UPDATE bb25.creds SET token = 'refresh-token-two' WHERE id = 1$$, '42501',
                 'brandbos does not decrypt inside a trigger',
                 'its write fires the owner''s trigger, which cannot read the _decrypted view');
RESET ROLE;
SET LOCAL ROLE bb25_owner;
DROP TRIGGER zzz_steal ON bb25.creds;
CREATE TRIGGER zzz_steal_direct AFTER UPDATE ON bb25.creds FOR EACH ROW EXECUTE FUNCTION bb25.steal_direct();
RESET ROLE;
SET LOCAL ROLE bb25_service;
SELECT throws_ok($$UPDATE bb25.creds SET token = 'refresh-token-two' WHERE id = 1$$, '42501',
                 'brandbos does not decrypt inside a trigger',
                 'nor call decrypt_text() there');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM bb25.loot), 0, 'the owner''s table received nothing');
SET LOCAL ROLE bb25_owner;
DROP TRIGGER zzz_steal_direct ON bb25.creds;
RESET ROLE;
SET LOCAL ROLE bb25_service;
SELECT lives_ok($$UPDATE bb25.creds SET token = 'refresh-token-two' WHERE id = 1$$,
                'without the planted trigger the write succeeds');
SELECT is((SELECT token FROM bb25.creds_decrypted WHERE id = 1), 'refresh-token-two',
          'and the new value reads back');
RESET ROLE;
SET LOCAL ROLE bb25_owner;
SELECT throws_ok($$SELECT token FROM bb25.creds_decrypted$$, '42501', NULL,
                 'the owner itself still cannot read the view');
SELECT * FROM finish();
ROLLBACK;
