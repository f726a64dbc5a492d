/*
 * table_shape.h — the cached shape of a protected table (table_shape.c),
 * for the files that seal and open its values.
 *
 * Other files use brandbos_table_shape() in brandbos.h; this header shows
 * the whole cache entry to the protect trigger and the table
 * administration.
 */
#ifndef BRANDBOS_TABLE_SHAPE_H
#define BRANDBOS_TABLE_SHAPE_H

#include "brandbos.h"

/* a registered protected column, resolved against the table's descriptor */
typedef struct ProtectedColumn
{
	AttrNumber	attnum;
	bool		as_text;
	unsigned char column_id[BRANDBOS_COLUMN_ID_BYTES];
} ProtectedColumn;

/* one table's entry in the per-backend cache; valid until an invalidation */
typedef struct TableConfig
{
	Oid			relid;			/* hash key */
	bool		valid;
	MemoryContext mcxt;
	int			ncolumns;
	ProtectedColumn *columns;
	int			nkeys;
	AttrNumber *key_attnums;
	BrandbosKeyEncoder *key_encoders;
} TableConfig;

/*
 * The cache entry of a table, loaded if needed: 55000 without a primary
 * key, 42703 or 42804 when a registered column is gone or no longer text
 * or bytea.  Do not keep it past the next invalidation.
 */
extern TableConfig *brandbos_table_config(Relation rel);

/*
 * The columns of rel's primary key in key order, palloc'd in the current
 * memory context; returns how many, 0 when rel has no primary key.
 */
extern int	brandbos_primary_key_attnums(Relation rel, AttrNumber **attnums);

/*
 * The primary key of rel, checked for protecting column attnum: 55000 when
 * there is none, 0A000 when it includes attnum or (check_types) a column
 * whose values do not bind stably (associated_data.c).  Returns the key
 * columns as brandbos_primary_key_attnums does.
 */
extern int	brandbos_require_bindable_primary_key(Relation rel, AttrNumber attnum,
												  bool check_types, AttrNumber **attnums);

#endif							/* BRANDBOS_TABLE_SHAPE_H */
