/*
 * audit_table_cache.h — the per-table cache of the audit trigger
 * (audit_table_cache.c), for the files that build its rows.
 */
#ifndef BRANDBOS_AUDIT_TABLE_CACHE_H
#define BRANDBOS_AUDIT_TABLE_CACHE_H

#include "brandbos.h"

#include "fmgr.h"

/* how a column's value goes into a row image (audit_row_image.c) */
typedef enum AuditValueKind
{
	AUDIT_VALUE_OTHER,			/* the string its output function prints */
	AUDIT_VALUE_BOOL,
	AUDIT_VALUE_INT2,
	AUDIT_VALUE_INT4,
	AUDIT_VALUE_INT8,
	AUDIT_VALUE_OID,
	AUDIT_VALUE_NUMERIC,
	AUDIT_VALUE_FLOAT,
	AUDIT_VALUE_JSON,
	AUDIT_VALUE_JSONB,
	AUDIT_VALUE_TEXT			/* text, varchar, bpchar: the stored bytes */
} AuditValueKind;

typedef struct AuditColumnInfo
{
	bool		dropped;
	Oid			typid;			/* the column's type (a domain, not its base) */
	AuditValueKind kind;
	FmgrInfo	output;			/* the type's output function */
} AuditColumnInfo;

/* one table's entry; valid until the next invalidation (see the .c file) */
typedef struct AuditTableInfo
{
	Oid			relid;			/* hash key */
	bool		valid;
	MemoryContext mcxt;
	int			natts;
	AuditColumnInfo *columns;	/* [natts], by attnum - 1 */
	char	   *qualified_name; /* quoted; NULL for a Citus shard */
} AuditTableInfo;

/* the entry of rel, loaded or reloaded as needed; do not keep it */
extern AuditTableInfo *brandbos_audit_table_info(Relation rel);

#endif							/* BRANDBOS_AUDIT_TABLE_CACHE_H */
