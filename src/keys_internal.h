/*
 * keys_internal.h — what the key files offer one another.
 *
 * root_key.c owns the root key; data_keys.c the wrapped data keys, their
 * per-backend cache and the version locks; key_admin.c the keymaster's
 * functions.  Other files use the key API of brandbos.h, never this one.
 */
#ifndef BRANDBOS_KEYS_INTERNAL_H
#define BRANDBOS_KEYS_INTERNAL_H

#include "brandbos.h"
#include "storage/lockdefs.h"

/* ---- root_key.c ------------------------------------------------------- */

/* 55000 (with the reason and a hint) unless a root key is loaded; loads it if needed */
extern void brandbos_require_root_key(void);

/* the loaded root key (32 bytes, read-only) or NULL; call brandbos_require_root_key first */
extern const unsigned char *brandbos_root_key(void);

/* the loaded root key's fingerprint as hex ("" when none is loaded) */
extern const char *brandbos_root_key_id(void);

/* ---- data_keys.c ------------------------------------------------------ */

/* registers the cache's invalidation and transaction callbacks */
extern void brandbos_data_keys_init(void);

/* throw every unwrapped data key away (the root key is being loaded again) */
extern void brandbos_forget_data_keys(void);

/* SPI on brandbos.data_keys as the extension owner; notes the table's OID for the cache */
extern void brandbos_keys_sql_begin(BrandbosInternalState *state);
extern void brandbos_keys_sql_end(BrandbosInternalState *state);


/* inside brandbos_keys_sql_begin: a column of the last result as text (NULL for NULL) */
extern char *brandbos_keys_text(int row, int col);

/*
 * Unwrap a stored data key (as brandbos.data_keys holds it) under the loaded
 * root key into out (BRANDBOS_DATA_KEY_BYTES); false when it does not open.
 */
extern bool brandbos_unwrap_stored_key(uint32 version, bytea *wrapped, unsigned char *out);

/* tell every backend, this one included, that brandbos.data_keys changed */
extern void brandbos_keys_changed(void);

/* the lock of a key version (see data_keys.c) */
extern void brandbos_lock_key_version(uint32 version, LOCKMODE mode);

/* retire the active key and make a new version active; returns it (55000 without a root key) */
extern uint32 brandbos_rotate_data_key(void);

/*
 * Wrap under the loaded root key every data key still wrapped under the
 * previous one (32 bytes, fingerprint previous_id); returns how many.
 */
extern int32 brandbos_rewrap_data_keys(const unsigned char *previous, const char *previous_id);

/* ---- audit_signing_key.c --------------------------------------------- */

/*
 * Part of rewrap_keys(): store the audit signing seed wrapped under the
 * loaded root key (derived from the previous one when none is stored yet);
 * true when it wrote.
 */
extern bool brandbos_rewrap_audit_signing_key(const unsigned char *previous, const char *previous_id);

#endif							/* BRANDBOS_KEYS_INTERNAL_H */
