/*
 * schema.h - the collections as data.
 *
 * schema/collections.json (embedded into the binary at build time) is the one
 * source of truth for every collection: its fields and their types, select
 * values, relations and cascade rules, unique indexes, per-action access
 * rules and its manifest kind.  Validation, the store's unique indexes, the
 * HTTP API and migrations all read it from here.  A loaded schema is
 * immutable and may be shared by every thread without locking.
 */
#ifndef POCKETCTL_SCHEMA_H
#define POCKETCTL_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

enum field_type {
	FT_TEXT,      /* JSON string */
	FT_NUMBER,    /* JSON number (integer or real) */
	FT_BOOL,      /* JSON true/false */
	FT_SELECT,    /* JSON string, one of values[] ("" when not required) */
	FT_JSON,      /* any JSON value; maxSize bounds its encoded size */
	FT_DATE,      /* "YYYY-MM-DD HH:MM:SS.sssZ" or "" (RFC 3339 accepted
	               * and normalised) */
	FT_RELATION,  /* a 15-char record id of target, or "" */
	FT_EMAIL,     /* a string with one '@', or "" */
	FT_PASSWORD,  /* write-only: stored as a bcrypt hash, never output */
};

enum rule_action {
	RULE_LIST,
	RULE_VIEW,
	RULE_CREATE,
	RULE_UPDATE,
	RULE_DELETE,
	RULE__COUNT
};

struct field {
	const char *name;
	enum field_type type;
	bool required;        /* a zero value ("" / 0 / false / null) is refused */
	bool hidden;          /* never returned by the API (password hashes) */
	bool secret;          /* returned only to the record's owner or an admin */
	bool system;          /* writable only by a superuser or the server itself
	                       * (users.role, sops.*, permissions.approved_by) */
	bool owner_writable;  /* "ownerWritable": a system field the record's
	                       * owner may set too (ssh_keys.last_used) */
	const char **values;  /* FT_SELECT: the allowed values */
	size_t nvalues;
	const char *target;   /* FT_RELATION: the target collection's name */
	bool cascade;         /* FT_RELATION: deleting the target deletes this
	                       * record; otherwise such a delete is refused */
	double min, max;      /* FT_NUMBER bounds when has_min/has_max */
	bool has_min, has_max;
	size_t max_size;      /* FT_TEXT max length in bytes, FT_JSON max encoded
	                       * size; 0 = the default limit (schema_load fills
	                       * in the effective limit, so never 0 there) */
	bool only_int;        /* FT_NUMBER: integers only */
	json_t *def;          /* value used when the field is absent from the
	                       * input on create (and, on update, from the
	                       * stored record too), already normalised; NULL
	                       * = none. Borrowed from the schema: copy it
	                       * (json_deep_copy), never change or decref it. */
};

struct index {
	const char *name;     /* e.g. "idx_tool_permissions_agent_tool_pattern" */
	bool unique;
	const char **fields;  /* field names; "name" may be the record name */
	size_t nfields;
};

/* A column of `pocketctl get`'s table ("columns" in the schema). */
struct column {
	const char *header;      /* "ACTION" */
	const char *path;        /* "spec.FIELD" (the record's field) or
	                          * "status.KEY[.KEY...]" (its status) */
	bool wide;               /* only with -o wide */
};

struct collection {
	const char *name;        /* "mcp_servers" */
	const char *id;          /* PocketBase collection id: "pc_mcp_servers",
	                          * "_pb_users_auth_" for users */
	const char *kind;        /* manifest kind, CamelCase singular: "McpServer" */
	bool auth;               /* an auth collection (users) */
	const char *name_field;  /* the field that is the record's name ("name"),
	                          * or NULL when the record name is metadata only */
	const char *owner_field; /* relation to users that owns the record
	                          * ("user"), or NULL */
	struct field *fields;
	size_t nfields;
	struct index *indexes;
	size_t nindexes;
	/* NULL = superusers only; "" = anyone; otherwise a filter expression. */
	const char *rules[RULE__COUNT];
	bool api_writable;       /* false: created/changed only by the server
	                          * (sops are created only by sealing) */
	const char **short_names; /* "shortNames": ["tp"], for the CLI and the
	                          * manifests endpoints (never in manifests'
	                          * kind:, as kubectl) */
	size_t nshort_names;
	struct column *columns;  /* "columns": the table's own columns */
	size_t ncolumns;
};

struct schema {
	int version;             /* bumps whenever collections.json changes shape */
	struct collection *collections;
	size_t ncollections;
	json_t *root;            /* owns every string above */
};

/*
 * Parse a schema document. On error returns a negative code, e names the
 * collection/field and the problem, and *out is untouched.
 * Caller owns the result (free with schema_free()).
 */
int schema_load(struct schema **out, const char *json_text, size_t len,
		struct err *e);

/* Load the schema embedded in the binary (schema/collections.json). */
int schema_load_default(struct schema **out, struct err *e);

/* Accepts NULL. */
void schema_free(struct schema *s);

/* The embedded schema/collections.json text, NUL-terminated. */
const char *schema_default_text(size_t *len);

/* Lookups; NULL when absent. Borrowed; valid while the schema lives. */
const struct collection *schema_find(const struct schema *s, const char *name);
const struct collection *schema_find_by_id(const struct schema *s,
					   const char *id);
/*
 * Find by manifest kind. Matching is case-insensitive and also accepts the
 * collection name and the lower-case kind, so "McpServer", "mcpserver",
 * "mcp_servers" and "mcpservers" all name mcp_servers (kubectl style).
 */
const struct collection *schema_find_kind(const struct schema *s,
					  const char *kind);
const struct field *collection_field(const struct collection *c,
				     const char *name);

/*
 * schema_find_kind(), or else the collection with kind as one of its
 * short names ("tp"), compared exactly: what the CLI and the manifests
 * endpoints accept. NULL when absent.
 */
const struct collection *schema_find_kind_or_short(const struct schema *s,
						   const char *kind);

/*
 * Validate and normalise record field data for collection c.
 *
 * in is the data a client sent (a JSON object). When base is non-NULL, in is
 * a partial update (PATCH) applied over base (the stored data); otherwise in
 * is the whole record. Unknown fields, wrong types, select values outside
 * their list, out-of-range numbers, oversized text/json, malformed dates,
 * emails and relation ids, and missing required fields are refused: the
 * first problem is returned with e->field set to the field name.
 *
 * On success *out is a new object with every field of c present, in schema
 * order, with zero values ("" / 0 / false / null) for missing ones; FT_DATE
 * values normalised. Relation targets are NOT checked for existence (the
 * store does that inside its transaction). FT_PASSWORD fields are copied as
 * given; hashing is the caller's job. Caller owns *out (json_decref).
 */
int schema_normalize(const struct collection *c, json_t *in, json_t *base,
		     json_t **out, struct err *e);

/*
 * Collections ordered so that every relation target comes before the
 * collections pointing at it (self-relations ignored). Fills order[] with
 * s->ncollections pointers. Used by apply to create targets first.
 */
void schema_topo_order(const struct schema *s,
		       const struct collection **order);

/* "text", "number", ... for messages. */
const char *field_type_name(enum field_type t);

#endif
