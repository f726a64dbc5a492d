-- Password hashing (Argon2id) and API keys.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION brandbos;
SELECT plan(122);

-- cheap parameters so the suite is fast; one default-parameter hash below
SET LOCAL brandbos.password_memlimit_kb = 8192;
SET LOCAL brandbos.password_opslimit = 1;

-- ---------------------------------------------------------------------------
-- hash_password
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE pw AS
SELECT brandbos.hash_password('correct horse battery staple') AS h1,
	   brandbos.hash_password('correct horse battery staple') AS h2;

SELECT matches((SELECT h1 FROM pw), '^\$argon2id\$v=19\$m=8192,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$',
			   'hash_password returns an argon2id encoded string with the current parameters');
SELECT isnt((SELECT h1 FROM pw), (SELECT h2 FROM pw), 'two hashes of one password differ (random salt)');
SELECT ok(brandbos.verify_password('correct horse battery staple', (SELECT h1 FROM pw)), 'right password verifies');
SELECT ok(brandbos.verify_password('correct horse battery staple', (SELECT h2 FROM pw)), 'right password verifies against the second hash');
SELECT ok(NOT brandbos.verify_password('correct horse battery stable', (SELECT h1 FROM pw)), 'wrong password does not verify');
SELECT ok(NOT brandbos.verify_password('Correct horse battery staple', (SELECT h1 FROM pw)), 'passwords are case-sensitive');
SELECT ok(NOT brandbos.verify_password('', (SELECT h1 FROM pw)), 'empty password does not verify');
SELECT ok(brandbos.verify_password('pässwörd ✓', brandbos.hash_password('pässwörd ✓')), 'non-ASCII password round-trips');

SELECT throws_ok($$SELECT brandbos.hash_password('')$$, '22023', NULL, 'empty password: 22023');
SELECT throws_ok($$SELECT brandbos.hash_password(repeat('x', 4097))$$, '22023', NULL, 'password over 4096 bytes: 22023');
SELECT throws_ok($$SELECT brandbos.hash_password(repeat('é', 2049))$$, '22023', NULL, 'the limit is in bytes, not characters');
SELECT ok(brandbos.verify_password(repeat('x', 4096), brandbos.hash_password(repeat('x', 4096))), 'a 4096-byte password is accepted');
SELECT ok(NOT brandbos.verify_password(repeat('x', 4097), (SELECT h1 FROM pw)), 'verifying an overlong password answers false');
SELECT ok(NOT brandbos.verify_password(repeat('x', 1000000), (SELECT h1 FROM pw)), 'verifying a 1 MB password answers false');

SELECT is(brandbos.hash_password(NULL), NULL, 'hash_password(NULL) is NULL');
SELECT is(brandbos.verify_password(NULL, (SELECT h1 FROM pw)), NULL, 'verify_password(NULL, hash) is NULL');
SELECT is(brandbos.verify_password('x', NULL), NULL, 'verify_password(password, NULL) is NULL');
SELECT is(brandbos.password_needs_rehash(NULL), NULL, 'password_needs_rehash(NULL) is NULL');

-- hashes made elsewhere by libsodium (fixed vectors: stored hashes must keep verifying)
SELECT ok(brandbos.verify_password('hunter2', '$argon2id$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY'),
		  'a stored argon2id hash verifies');
SELECT ok(NOT brandbos.verify_password('hunter3', '$argon2id$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY'),
		  'a stored argon2id hash rejects a wrong password');
SELECT ok(brandbos.verify_password('hunter2', '$argon2i$v=19$m=8192,t=3,p=1$a2QKkZvCJcy0N7OM9JHgow$a6+GXaouFR3XphmaHaBBCSP7OcBPCYfPnru+CC9uS08'),
		  'an argon2i hash verifies');
SELECT ok(NOT brandbos.verify_password('hunter2', '$argon2id$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sA'),
		  'a hash with a changed digest does not verify');

-- malformed hashes
SELECT throws_ok($$SELECT brandbos.verify_password('x', 'not a hash')$$, '22023', NULL, 'verify: arbitrary text is not a hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '')$$, '22023', NULL, 'verify: empty hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW')$$,
				 '22023', NULL, 'verify: a bcrypt hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$')$$, '22023', NULL, 'verify: bare prefix: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g')$$,
				 '22023', NULL, 'verify: truncated hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$')$$,
				 '22023', NULL, 'verify: hash without digest: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=16$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '22023', NULL, 'verify: unsupported argon2 version: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY ')$$,
				 '22023', NULL, 'verify: trailing characters: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2d$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '22023', NULL, 'verify: argon2d is not accepted: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', (SELECT h1 FROM pw) || repeat('A', 100))$$,
				 '22023', NULL, 'verify: overlong hash: 22023');
SELECT throws_ok($$SELECT brandbos.password_needs_rehash('not a hash')$$, '22023', NULL, 'needs_rehash: arbitrary text: 22023');
SELECT throws_ok($$SELECT brandbos.password_needs_rehash('$argon2id$v=19$m=8192')$$, '22023', NULL, 'needs_rehash: truncated hash: 22023');

SELECT throws_ok($$SELECT brandbos.verify_password('x', '$7$C6..../....SodiumChloride$kBGj9fHznVYFQMEn/qDCfrDevf9YDtcDdKvEqHJLV8D')$$,
				 '22023', NULL, 'verify: an scrypt ($7$) hash is not accepted: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', repeat('$argon2id$', 100000))$$,
				 '22023', NULL, 'verify: a 1 MB hash is refused by its size: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=08192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '22023', NULL, 'verify: a parameter with a leading zero: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=99999999999,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '22023', NULL, 'verify: a parameter too large for 32 bits: 22023');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$t=1,m=8192,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '22023', NULL, 'verify: parameters out of order: 22023');

-- ---------------------------------------------------------------------------
-- cost ceilings: a crafted hash cannot make verification allocate or loop
-- without bound (53400, refused before any hashing)
-- ---------------------------------------------------------------------------
SELECT is(current_setting('brandbos.password_max_opslimit'), '4', 'password_max_opslimit defaults to 4');
SELECT is(current_setting('brandbos.password_max_memlimit_kb'), '128MB', 'password_max_memlimit_kb defaults to 128 MB');

CREATE ROLE bb_pw_attacker LOGIN;
CREATE TEMP TABLE costly (what text, h text);
INSERT INTO costly VALUES
	('4 GB, 20 passes', '$argon2id$v=19$m=4194304,t=20,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY'),
	('argon2i 4 GB, 20 passes', '$argon2i$v=19$m=4194304,t=20,p=1$a2QKkZvCJcy0N7OM9JHgow$a6+GXaouFR3XphmaHaBBCSP7OcBPCYfPnru+CC9uS08'),
	('256 MB, 5 passes', '$argon2id$v=19$m=262144,t=5,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY');
GRANT SELECT ON costly TO bb_pw_attacker;
SET LOCAL ROLE bb_pw_attacker;
SELECT throws_ok($$SELECT brandbos.verify_password('x', h) FROM costly WHERE what = '4 GB, 20 passes'$$,
				 '53400', NULL, 'attacker: a hash asking for m=4194304 kB, t=20 is refused: 53400');
SELECT throws_ok($$SELECT brandbos.verify_password('x', h) FROM costly WHERE what = 'argon2i 4 GB, 20 passes'$$,
				 '53400', NULL, 'attacker: the same for argon2i: 53400');
SELECT throws_ok($$SELECT brandbos.verify_password('x', h) FROM costly WHERE what = '256 MB, 5 passes'$$,
				 '53400', NULL, 'attacker: a hash asking for m=262144 kB, t=5 (above the default ceilings) is refused: 53400');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=131073,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '53400', NULL, 'attacker: one kB above the memory ceiling: 53400');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=8192,t=5,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '53400', NULL, 'attacker: one pass above the ceiling: 53400');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=4194305,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '53400', NULL, 'attacker: memory above 4 GB: 53400');
SELECT throws_ok($$SELECT brandbos.verify_password('x', '$argon2id$v=19$m=8192,t=21,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY')$$,
				 '53400', NULL, 'attacker: more than 20 passes: 53400');
SELECT ok(brandbos.password_needs_rehash((SELECT h FROM costly WHERE what = '4 GB, 20 passes')),
		  'attacker: password_needs_rehash of the 4 GB hash answers true, without hashing');
SELECT ok(brandbos.verify_password('hunter2', '$argon2id$v=19$m=8192,t=1,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY'),
		  'attacker: a hash within the ceilings still verifies');
SELECT throws_ok($$SET LOCAL brandbos.password_max_memlimit_kb = '4GB'$$, '42501', NULL,
				 'attacker: cannot SET password_max_memlimit_kb: 42501');
SELECT throws_ok($$SET LOCAL brandbos.password_max_opslimit = 20$$, '42501', NULL,
				 'attacker: cannot SET password_max_opslimit: 42501');
SELECT throws_ok($$SELECT set_config('brandbos.password_max_opslimit', '20', true)$$, '42501', NULL,
				 'attacker: cannot raise the ceiling through set_config() either: 42501');
RESET ROLE;
SELECT is(current_setting('brandbos.password_max_opslimit'), '4', 'the ceiling is unchanged after the attempts');

SELECT throws_ok($$SET LOCAL brandbos.password_max_opslimit = 21$$, '22023', NULL, 'password_max_opslimit above 20 is refused');
SELECT throws_ok($$SET LOCAL brandbos.password_max_memlimit_kb = 7$$, '22023', NULL, 'password_max_memlimit_kb below 8 kB is refused');

-- a superuser may raise the ceilings for hashes made with stronger parameters
SET LOCAL brandbos.password_max_opslimit = 5;
SELECT ok(NOT brandbos.verify_password('x', '$argon2id$v=19$m=8192,t=5,p=1$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY'),
		  'a raised ceiling lets a 5-pass hash be checked (wrong digest: false)');
SET LOCAL brandbos.password_max_opslimit TO DEFAULT;

-- lowering the ceilings below the hashing parameters: the effective ceiling
-- is the larger of the two, so a hash brandbos makes now always verifies
SET LOCAL brandbos.password_max_memlimit_kb = 8;
SET LOCAL brandbos.password_max_opslimit = 1;
SET LOCAL brandbos.password_memlimit_kb = 16384;
SET LOCAL brandbos.password_opslimit = 2;
CREATE TEMP TABLE pw_strong AS SELECT brandbos.hash_password('strong') AS h;
SELECT ok(brandbos.verify_password('strong', (SELECT h FROM pw_strong)),
		  'ceilings below the hashing settings: a fresh hash (m=16384, t=2) verifies');
SELECT ok(brandbos.verify_password('correct horse battery staple', (SELECT h1 FROM pw)),
		  'and so do older, cheaper hashes');
SET LOCAL brandbos.password_memlimit_kb = 8192;
SET LOCAL brandbos.password_opslimit = 1;
SELECT throws_ok($$SELECT brandbos.verify_password('strong', (SELECT h FROM pw_strong))$$, '53400', NULL,
				 'hashing settings lowered too: the stronger stored hash is above every limit: 53400');
SET LOCAL brandbos.password_max_memlimit_kb TO DEFAULT;
SET LOCAL brandbos.password_max_opslimit TO DEFAULT;
SELECT ok(brandbos.verify_password('strong', (SELECT h FROM pw_strong)), 'default ceilings again: it verifies');

-- ---------------------------------------------------------------------------
-- password_needs_rehash and the settings
-- ---------------------------------------------------------------------------
SELECT ok(NOT brandbos.password_needs_rehash((SELECT h1 FROM pw)), 'a hash made with the current settings needs no rehash');
SELECT ok(brandbos.password_needs_rehash('$argon2i$v=19$m=8192,t=1,p=1$a2QKkZvCJcy0N7OM9JHgow$a6+GXaouFR3XphmaHaBBCSP7OcBPCYfPnru+CC9uS08'),
		  'an argon2i hash always needs a rehash, even with matching parameters');
SELECT ok(brandbos.password_needs_rehash('$argon2id$v=19$m=8192,t=1,p=2$70K8UMw8kMoWM0UXCyRp7g$VBfYtxKQnVBuUNkdMju4OqvPuqvk4xI2l4ryh0K1/sY'),
		  'a hash with more than one lane needs a rehash');

SET LOCAL brandbos.password_opslimit = 2;
SELECT ok(brandbos.password_needs_rehash((SELECT h1 FROM pw)), 'after raising password_opslimit the hash needs a rehash');
SELECT ok(brandbos.verify_password('correct horse battery staple', (SELECT h1 FROM pw)),
		  'the old hash still verifies under new settings');
SET LOCAL brandbos.password_opslimit = 1;
SET LOCAL brandbos.password_memlimit_kb = '16MB';
SELECT ok(brandbos.password_needs_rehash((SELECT h1 FROM pw)), 'after raising password_memlimit_kb the hash needs a rehash');
SELECT matches(brandbos.hash_password('x'), '^\$argon2id\$v=19\$m=16384,t=1,p=1\$', 'memlimit accepts units (16MB = 16384 kB)');
SET LOCAL brandbos.password_memlimit_kb = 8192;
SELECT ok(NOT brandbos.password_needs_rehash((SELECT h1 FROM pw)), 'back to the original settings: no rehash');

SELECT throws_ok($$SET LOCAL brandbos.password_opslimit = 0$$, '22023', NULL, 'password_opslimit below 1 is refused');
SELECT throws_ok($$SET LOCAL brandbos.password_opslimit = 21$$, '22023', NULL, 'password_opslimit above 20 is refused');
SELECT throws_ok($$SET LOCAL brandbos.password_memlimit_kb = 7$$, '22023', NULL, 'password_memlimit_kb below 8 kB is refused');

-- the defaults: libsodium's interactive parameters
SET LOCAL brandbos.password_opslimit TO DEFAULT;
SET LOCAL brandbos.password_memlimit_kb TO DEFAULT;
SELECT is(current_setting('brandbos.password_opslimit'), '2', 'password_opslimit defaults to 2');
SELECT is(current_setting('brandbos.password_memlimit_kb'), '64MB', 'password_memlimit_kb defaults to 64 MB');
CREATE TEMP TABLE pw_default AS SELECT brandbos.hash_password('default params') AS h;
SELECT matches((SELECT h FROM pw_default), '^\$argon2id\$v=19\$m=65536,t=2,p=1\$', 'a default hash uses m=65536, t=2, p=1');
SELECT ok(brandbos.verify_password('default params', (SELECT h FROM pw_default)), 'a default hash verifies');
SELECT ok(NOT brandbos.password_needs_rehash((SELECT h FROM pw_default)), 'a default hash needs no rehash under defaults');
SELECT ok(brandbos.password_needs_rehash((SELECT h1 FROM pw)), 'the cheap hash needs a rehash under defaults');
SET LOCAL brandbos.password_memlimit_kb = 8192;
SET LOCAL brandbos.password_opslimit = 1;

-- ---------------------------------------------------------------------------
-- generate_api_key
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE k AS SELECT * FROM brandbos.generate_api_key();
CREATE TEMP TABLE k2 AS SELECT * FROM brandbos.generate_api_key('Sk2');

SELECT is((SELECT count(*)::int FROM brandbos.generate_api_key()), 1, 'generate_api_key returns exactly one row');
SELECT matches((SELECT api_key FROM k), '^bb_[A-Za-z0-9_-]{43}$', 'api_key is "bb_" and 43 base64url characters');
SELECT matches((SELECT key_prefix FROM k), '^bb_[A-Za-z0-9_-]{8}$', 'key_prefix is "bb_" and 8 characters');
SELECT ok((SELECT starts_with(api_key, key_prefix) FROM k), 'key_prefix is a prefix of api_key');
SELECT is((SELECT length(key_hash) FROM k), 32, 'key_hash is 32 bytes');
SELECT matches((SELECT api_key FROM k2), '^Sk2_[A-Za-z0-9_-]{43}$', 'a custom prefix is used');
SELECT is((SELECT key_prefix FROM k2), (SELECT left(api_key, 12) FROM k2), 'key_prefix of a custom prefix');
SELECT matches((SELECT api_key FROM brandbos.generate_api_key('abcdefghijklmnop')), '^abcdefghijklmnop_',
			   'a 16-character prefix is accepted');
SELECT matches((SELECT api_key FROM brandbos.generate_api_key('Z')), '^Z_', 'a 1-letter prefix is accepted');
SELECT isnt((SELECT api_key FROM k), (SELECT api_key FROM brandbos.generate_api_key()), 'two keys differ');
SELECT is((SELECT count(*)::int FROM brandbos.generate_api_key(NULL)), 0, 'generate_api_key(NULL) returns no row');
SELECT is((SELECT (brandbos.generate_api_key()).key_prefix ~ '^bb_'), true, 'callable in a select list');

SELECT throws_ok($$SELECT * FROM brandbos.generate_api_key('')$$, '22023', NULL, 'empty prefix: 22023');
SELECT throws_ok($$SELECT * FROM brandbos.generate_api_key('abcdefghijklmnopq')$$, '22023', NULL, '17-character prefix: 22023');
SELECT throws_ok($$SELECT * FROM brandbos.generate_api_key('b_b')$$, '22023', NULL, 'prefix with "_": 22023');
SELECT throws_ok($$SELECT * FROM brandbos.generate_api_key('1bb')$$, '22023', NULL, 'prefix starting with a digit: 22023');
SELECT throws_ok($$SELECT * FROM brandbos.generate_api_key('bé')$$, '22023', NULL, 'non-ASCII prefix: 22023');

-- ---------------------------------------------------------------------------
-- verify_api_key
-- ---------------------------------------------------------------------------
SELECT ok((SELECT brandbos.verify_api_key(api_key, key_hash) FROM k), 'a key verifies against its hash');
SELECT ok((SELECT brandbos.verify_api_key(api_key, key_hash) FROM k2), 'a custom-prefix key verifies');
SELECT ok((SELECT NOT brandbos.verify_api_key(
				overlay(api_key PLACING CASE WHEN substr(api_key, 20, 1) = 'A' THEN 'B' ELSE 'A' END FROM 20 FOR 1),
				key_hash) FROM k),
		  'a key with one character changed does not verify');
SELECT ok(NOT brandbos.verify_api_key((SELECT api_key FROM k), (SELECT key_hash FROM k2)), 'a key does not verify against another key''s hash');
SELECT ok((SELECT NOT brandbos.verify_api_key('xx' || substr(api_key, 3), key_hash) FROM k),
		  'the same secret under another prefix does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key(api_key || 'A', key_hash) FROM k), 'a key with an extra character does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key(left(api_key, -1), key_hash) FROM k), 'a truncated key does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key(key_prefix, key_hash) FROM k), 'key_prefix alone does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key('', key_hash) FROM k), 'the empty string does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key('garbage', key_hash) FROM k), 'garbage does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key('bb_' || repeat('!', 43), key_hash) FROM k), 'a non-base64url secret does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key('_' || substr(api_key, 4), key_hash) FROM k), 'a key without prefix does not verify');
SELECT ok((SELECT NOT brandbos.verify_api_key(repeat('x', 1000000), key_hash) FROM k), 'a 1 MB string does not verify');
SELECT is(brandbos.verify_api_key(NULL, (SELECT key_hash FROM k)), NULL, 'verify_api_key(NULL, hash) is NULL');
SELECT is(brandbos.verify_api_key((SELECT api_key FROM k), NULL), NULL, 'verify_api_key(key, NULL) is NULL');

-- fixed vector, computed outside brandbos (Python hashlib.blake2b):
-- secret = bytes 0..31, key_hash = BLAKE2b-256(key = secret, "brandbos api key v1" || "bb")
SELECT ok(brandbos.verify_api_key('bb_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8',
								  '\x567296543821960b8aebf62853262a05e2346dfc90689a55bd707f397633a791'),
		  'key_hash format is stable (known-answer vector)');
SELECT ok(NOT brandbos.verify_api_key('bb_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9',
									  '\x567296543821960b8aebf62853262a05e2346dfc90689a55bd707f397633a791'),
		  'a non-canonical encoding of the same secret does not verify');

SELECT throws_ok($$SELECT brandbos.verify_api_key('bb_x', '\x00'::bytea)$$, '22023', NULL, '1-byte hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_api_key('bb_x', ''::bytea)$$, '22023', NULL, 'empty hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_api_key(api_key, substr(key_hash, 2)) FROM k$$, '22023', NULL, '31-byte hash: 22023');
SELECT throws_ok($$SELECT brandbos.verify_api_key(api_key, key_hash || '\x00'::bytea) FROM k$$, '22023', NULL, '33-byte hash: 22023');

-- ---------------------------------------------------------------------------
-- an ordinary role may use all five functions, but not weaken the settings
-- ---------------------------------------------------------------------------
CREATE ROLE bb_pw_app NOLOGIN;
CREATE TEMP TABLE role_results (what text, result text);
GRANT ALL ON role_results TO bb_pw_app;
GRANT SELECT ON k TO bb_pw_app;
SET LOCAL ROLE bb_pw_app;
INSERT INTO role_results
SELECT 'password', brandbos.verify_password('app secret', brandbos.hash_password('app secret'))::text;
INSERT INTO role_results
SELECT 'needs_rehash', brandbos.password_needs_rehash(brandbos.hash_password('app secret'))::text;
INSERT INTO role_results
SELECT 'api key', brandbos.verify_api_key(api_key, key_hash)::text FROM brandbos.generate_api_key('app');
INSERT INTO role_results
SELECT 'old api key', brandbos.verify_api_key(api_key, key_hash)::text FROM k;
DO $$
BEGIN
	SET LOCAL brandbos.password_opslimit = 1;
	INSERT INTO role_results VALUES ('set opslimit', 'allowed');
EXCEPTION WHEN OTHERS THEN
	INSERT INTO role_results VALUES ('set opslimit', SQLSTATE);
END
$$;
DO $$
BEGIN
	SET LOCAL brandbos.password_memlimit_kb = 8;
	INSERT INTO role_results VALUES ('set memlimit', 'allowed');
EXCEPTION WHEN OTHERS THEN
	INSERT INTO role_results VALUES ('set memlimit', SQLSTATE);
END
$$;
RESET ROLE;

SELECT is((SELECT result FROM role_results WHERE what = 'password'), 'true', 'an ordinary role can hash and verify passwords');
SELECT is((SELECT result FROM role_results WHERE what = 'needs_rehash'), 'false', 'an ordinary role can call password_needs_rehash');
SELECT is((SELECT result FROM role_results WHERE what = 'api key'), 'true', 'an ordinary role can generate and verify api keys');
SELECT is((SELECT result FROM role_results WHERE what = 'old api key'), 'true', 'keys verify the same for every role');
SELECT is((SELECT result FROM role_results WHERE what = 'set opslimit'), '42501', 'an ordinary role cannot set password_opslimit');
SELECT is((SELECT result FROM role_results WHERE what = 'set memlimit'), '42501', 'an ordinary role cannot set password_memlimit_kb');

SELECT * FROM finish();
ROLLBACK;
