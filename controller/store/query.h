/*
 * query.h - a store query that names no backend: a predicate tree over the
 * records of one collection and a sort list.
 *
 * The filter compiler (filter.h) turns PocketBase filters and sorts into
 * these values after resolving every name against the schema, and callers
 * that want a fixed condition (the ledger, the auth lookup) build them by
 * hand. The store turns them into its own query language (query_sql.c for
 * SQLite), so the tree says what to compare, never how a backend spells it.
 *
 * Values are plain: a struct query_pred owns its kids, literals and JSON
 * keys (free with query_pred_free()); names (fields, columns, collections)
 * are borrowed and must outlive the tree - schema names or string
 * literals. A struct query_sort is a value owning nothing.
 */
#ifndef POCKETCTL_QUERY_H
#define POCKETCTL_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define QUERY_MAX_HOPS 4     /* relation hops before a value is read */
#define QUERY_MAX_SORT 17    /* sort keys (16 terms plus the id tiebreak) */

/*
 * Comparisons. EQ and NEQ follow PocketBase: a missing value, null and ""
 * are equal, and NEQ holds for a null stored value. LIKE / NLIKE: the
 * right side is a contains-pattern, case-insensitive ('%' and '_' in a
 * literal are escaped unless it already holds an unescaped '%', which then
 * makes it a pattern as written; backslash escapes). EQ_NOCASE is plain
 * equality ignoring ASCII case (no null rules). The others order values as
 * the backend orders mixed JSON scalars.
 */
enum query_op {
	QUERY_EQ,
	QUERY_NEQ,
	QUERY_GT,
	QUERY_GTE,
	QUERY_LT,
	QUERY_LTE,
	QUERY_LIKE,
	QUERY_NLIKE,
	QUERY_EQ_NOCASE,
};

enum query_val_kind {
	QUERY_LITERAL,     /* literal: string, integer, real, true, false, null */
	QUERY_COLUMN,      /* name: a record column: id, name, created, updated */
	QUERY_FIELD,       /* name: a field of the record's data */
	QUERY_JSON_PATH,   /* name: a json field; keys: the path inside it */
};

/* One relation hop: the value of relation field `field` (a record id)
 * names a record of collection `target`, whose row the next hop (or the
 * value itself) reads. */
struct query_hop {
	const char *field;
	const char *target;
};

/* One side of a comparison. */
struct query_val {
	enum query_val_kind kind;
	json_t *literal;         /* QUERY_LITERAL: owned */
	struct query_hop hops[QUERY_MAX_HOPS];
	size_t nhops;            /* 0: the row being filtered */
	const char *name;
	bool zero;               /* QUERY_FIELD: a missing value reads as 0
	                          * (bool and number fields, as PocketBase's
	                          * column defaults) */
	json_t *keys;            /* QUERY_JSON_PATH: owned array of strings; a
	                          * key of digits only indexes an array */
};

enum query_kind {
	QUERY_TRUE,        /* every record */
	QUERY_AND,         /* all kids (two or more) */
	QUERY_OR,          /* any kid (two or more) */
	QUERY_NOT,         /* not kids[0] */
	QUERY_CMP,         /* lhs op rhs */
	QUERY_ON_RECORD,   /* kids[0] holds for the record given in row, not
	                    * for the row being filtered (relation hops still
	                    * read the store); the outer row only has to
	                    * exist */
};

struct query_pred {
	enum query_kind kind;
	struct query_pred **kids;
	size_t nkids, alloc;
	bool apart;              /* QUERY_AND: kids compiled apart (a rule and
	                          * a filter), each kept whole */
	enum query_op op;        /* QUERY_CMP */
	struct query_val lhs, rhs;
	json_t *row;             /* QUERY_ON_RECORD, owned: the record as
	                          * [collection, id, name, data, labels, status,
	                          * generation, revision, created, updated] */
};

/* Sort keys, first to last. RANDOM ignores desc. */
enum query_sort_kind {
	QUERY_SORT_COLUMN,   /* name: id, name, created, updated */
	QUERY_SORT_FIELD,    /* name: a field; zero as in struct query_val */
	QUERY_SORT_RANDOM,
};

struct query_sort_key {
	enum query_sort_kind kind;
	const char *name;        /* borrowed */
	bool zero;
	bool desc;
};

/* No keys: the store's default order (created, then id). */
struct query_sort {
	size_t n;
	struct query_sort_key keys[QUERY_MAX_SORT];
};

/* By name, then id: the order kubectl-style listings use everywhere. */
extern const struct query_sort query_by_name;

/* ---- values ----------------------------------------------------------- */

/* A literal value; takes ownership of v (NULL stays NULL: out of
 * memory, which query_cmp() reports). */
struct query_val query_literal(json_t *v);

/* A column or field of the row being filtered; name borrowed. */
struct query_val query_column(const char *name);
struct query_val query_field(const char *name, bool zero);

/* Free what v owns and zero it. Accepts NULL. */
void query_val_release(struct query_val *v);

/* ---- predicates -------------------------------------------------------- */

/* A node of kind k with no kids (QUERY_TRUE, or a list to fill with
 * query_pred_add()). NULL when out of memory. */
struct query_pred *query_pred_new(enum query_kind k);

/*
 * lhs op rhs. Takes ownership of both values, also on failure; NULL when
 * out of memory (or when a literal given is NULL).
 */
struct query_pred *query_cmp(enum query_op op, struct query_val lhs,
			     struct query_val rhs);

/*
 * Append kid to list. Takes ownership of kid, also on failure (kid NULL:
 * a failed constructor, reported as out of memory). Returns 0 or
 * ERR_NOMEM.
 */
int query_pred_add(struct query_pred *list, struct query_pred *kid);

/*
 * a AND b as two conditions compiled apart (apart = true). Takes ownership
 * of both, also on failure; NULL when out of memory or when either is
 * NULL, so constructors can be nested and checked once.
 */
struct query_pred *query_and(struct query_pred *a, struct query_pred *b);

/*
 * kid evaluated against the record row (see QUERY_ON_RECORD). Takes
 * ownership of row and kid, also on failure; NULL when out of memory or
 * when either is NULL.
 */
struct query_pred *query_on_record(json_t *row, struct query_pred *kid);

/* Free p, its kids and all it owns. Accepts NULL. */
void query_pred_free(struct query_pred *p);

/* ---- sort -------------------------------------------------------------- */

/* Append a key (name borrowed). Returns 0, or ERR_TOO_LARGE when the list
 * holds QUERY_MAX_SORT keys already. */
int query_sort_add(struct query_sort *s, enum query_sort_kind kind,
		   const char *name, bool zero, bool desc);

#endif
