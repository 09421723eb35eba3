/*
 * filter.h - PocketBase filter and sort expressions compiled to SQL.
 *
 * The records API takes ?filter= and ?sort=, and every collection's access
 * rules are written in the same filter language.  A hand-written
 * recursive-descent parser turns the text into a small AST; the emitter then
 * resolves every identifier against the schema and writes SQL in which field
 * names come only from the trusted schema and every literal is a bound '?'
 * parameter.  Text from the user never reaches the SQL string.
 *
 * Language (PocketBase's, see tools/search in pocketbase and fexpr):
 *
 *   expr     := and ( '||' and )*
 *   and      := primary ( '&&' primary )*
 *   primary  := '(' expr ')' | operand OP operand
 *   OP       := = != > >= < <= ~ !~  and the any-of forms ?= ?!= ?> ?>= ?<
 *               ?<= ?~ ?!~ (every field is single-valued here, so these mean
 *               the same as the plain forms)
 *   operand  := 'text' | "text" (backslash escapes the quote and itself)
 *             | number (-12, 3.5) | true | false | null
 *             | field | relation.path (at most FILTER_MAX_HOPS hops)
 *             | jsonfield.key.0 | @request.auth.<field> | @now
 *             | @request.body.<field> (a field of the collection)
 *
 * Semantics follow PocketBase: '=' and '!=' treat a missing value, null and
 * "" as equal; '!=' is true when the stored value is null; '~' is a
 * case-insensitive contains (the operand is wrapped in '%' and its '%' and
 * '_' escaped, unless it already holds an unescaped '%', in which case it is
 * used as a LIKE pattern as is); bool fields compare with true/false, and
 * missing bool/number values count as false/0 like PocketBase's column
 * defaults; a relation field's value is the target record's id.
 *
 * Hidden and secret fields can be filtered and sorted on only by a
 * superuser, so that a filter cannot probe values the API would not return;
 * password fields never.  Related collections' own access rules are NOT
 * applied to relation paths: a filter may test any non-secret field of a
 * related record.  SQL for long && / || chains is emitted as a balanced
 * tree, so every accepted filter stays within SQLite's expression depth.
 */
#ifndef POCKETCTL_FILTER_H
#define POCKETCTL_FILTER_H

#include <stdbool.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "schema.h"

#define FILTER_MAX_LEN 4096   /* bytes of filter text */
#define FILTER_MAX_DEPTH 32   /* nested parentheses */
#define FILTER_MAX_HOPS 4     /* relation hops in one dotted path */
#define SORT_MAX_LEN 1024     /* bytes of sort text */
#define SORT_MAX_TERMS 16     /* comma-separated sort fields */

/* Who is asking (and with what): resolves @request.auth.* and
 * @request.body.*, and decides access to hidden and secret fields. */
struct filter_auth {
	bool superuser;
	json_t *record;   /* borrowed: the auth user's field data plus "id",
	                   * or NULL for a guest */
	json_t *body;     /* borrowed: the submitted fields of a create/update
	                   * (for rules), or NULL */
};

/*
 * Compile filter expression expr for collection c (which must belong to s)
 * into a boolean SQL expression that can be used as
 *     SELECT ... FROM records WHERE collection = ? AND (<sql>)
 * The expression refers to the outer table as `records` (unaliased), so the
 * query it is pasted into must not alias that table; relation paths become
 * correlated scalar subqueries over aliases r1, r2, ...
 *
 * The SQL is appended to sql and the bind values, in order of their '?', are
 * appended to args (a JSON array: strings, integers, reals, null). An empty
 * expr ("") compiles to "1" (no condition) with no binds; a blank one is an
 * error, like in PocketBase. NOTE for rule checks: a NULL rule means
 * "superusers only" and must be handled by the caller, never passed here.
 *
 * auth may be NULL (a guest). A guest's @request.auth.id is "" and its other
 * @request.auth fields are null; a field missing from auth->body (or all of
 * them, when body is NULL) is null in @request.body. Unknown fields are
 * errors in both. @request.* values are bound at compile time, so compile
 * once per request.
 *
 * Returns 0, or ERR_INVALID for bad input with e->field = "filter" and a
 * message giving the 1-based character position, e.g.
 * "filter: unknown field 'foo' at position 1"; ERR_NOMEM / ERR_TOO_LARGE
 * from the buffer. On error sql and args are left exactly as they were.
 * Nothing is retained: s, c, expr and auth are borrowed for the call.
 */
int filter_compile(const struct schema *s, const struct collection *c,
		   const char *expr, const struct filter_auth *auth,
		   struct buf *sql, json_t *args, struct err *e);

/*
 * Whether expr's value can depend on the record it is checked against:
 * false only when every operand is a literal or @request.auth.* (and for
 * "", which allows everything), so that the verdict for one viewer holds
 * for every record of the collection until the viewer's auth record
 * changes. True for anything it cannot parse.
 */
bool filter_reads_record(const char *expr);

/*
 * Compile a PocketBase sort string ("-created,name", "+title", "@random")
 * into an ORDER BY body appended to sql, e.g.
 *     "records.created DESC, json_extract(records.data, '$.name') ASC,
 *      records.id ASC"
 * Terms are comma separated, '-' means descending and '+' (optional)
 * ascending; allowed are id, created, updated, @random and the schema fields
 * of c of scalar types (not json, not hidden or secret ones unless auth is a
 * superuser). The body always ends with a tiebreak on records.id so the
 * order is stable. An empty sort gives "records.created ASC, records.id ASC"
 * (the store's default order).
 *
 * auth may be NULL (a guest). Returns 0, or ERR_INVALID with e->field =
 * "sort" naming the term ("sort: unknown field 'foo' at position 1"); on
 * error sql is left as it was.
 */
int filter_sort_compile(const struct collection *c, const char *sort,
			const struct filter_auth *auth, struct buf *sql,
			struct err *e);

#endif
