/*
 * filter.h - PocketBase filter and sort expressions compiled to store
 * queries (query.h).
 *
 * The records API takes ?filter= and ?sort=, and every collection's access
 * rules are written in the same filter language.  A hand-written
 * recursive-descent parser turns the text into a small AST; the resolver
 * then checks every identifier against the schema and builds a predicate
 * tree in which names come only from the trusted schema and every value is
 * a typed literal (@request.* bound).  The store spells the tree in its own
 * query language; text from the user never becomes query text.
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
 * password fields never.  In a caller's own filter (filter_compile_caller())
 * a relation path also reaches only records the caller may view: each
 * hop carries the target collection's view rule, and an auth collection's
 * email needs the caller to be that record, an admin, or emailVisibility;
 * a hidden target record matches no comparison at all.  Rules themselves
 * (filter_compile()) are trusted and read related records unguarded.
 */
#ifndef POCKETCTL_FILTER_H
#define POCKETCTL_FILTER_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"
#include "query.h"
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
 * into a predicate tree over c's records, *out (caller owns it: free with
 * query_pred_free()). Relation paths become hops to the target
 * collection, a collection's name field the name column, and bool and
 * number fields read a missing value as false / 0. An empty expr ("")
 * compiles to QUERY_TRUE (no condition); a blank one is an error, like in
 * PocketBase. NOTE for rule checks: a NULL rule means "superusers only"
 * and must be handled by the caller, never passed here.
 *
 * auth may be NULL (a guest). A guest's @request.auth.id is "" and its other
 * @request.auth fields are null; a field missing from auth->body (or all of
 * them, when body is NULL) is null in @request.body. Unknown fields are
 * errors in both. @request.* values are bound at compile time, so compile
 * once per request.
 *
 * Returns 0, or ERR_INVALID for bad input with e->field = "filter" and a
 * message giving the 1-based character position, e.g.
 * "filter: unknown field 'foo' at position 1"; ERR_NOMEM. On error *out is
 * NULL. The tree borrows names from s, which must outlive it; expr and
 * auth are borrowed for the call.
 */
int filter_compile(const struct schema *s, const struct collection *c,
		   const char *expr, const struct filter_auth *auth,
		   struct query_pred **out, struct err *e);

/*
 * filter_compile() for a filter the caller wrote (?filter=, a realtime
 * subscription's filter), not a rule: every comparison that reads through
 * relation hops is ANDed with what the caller may see there - the view
 * rule of each hop's target, read through the hops that reach it (a NULL
 * view rule: nothing), and for "email" of an auth collection "the record
 * is the caller, or its emailVisibility is true" unless admin (a users
 * record with role "admin": it may read every email). So a record the
 * caller may not view never matches, whichever operator.
 * A superuser's filter compiles as with filter_compile().
 *
 * Returns as filter_compile(); also ERR_INVALID naming the position when
 * a target's view rule adds hops beyond FILTER_MAX_HOPS.
 */
int filter_compile_caller(const struct schema *s,
			  const struct collection *c, const char *expr,
			  const struct filter_auth *auth, bool admin,
			  struct query_pred **out, struct err *e);

/*
 * Whether expr's value can depend on the record it is checked against:
 * false only when every operand is a literal or @request.auth.* (and for
 * "", which allows everything), so that the verdict for one viewer holds
 * for every record of the collection until the viewer's auth record
 * changes. True for anything it cannot parse.
 */
bool filter_reads_record(const char *expr);

/*
 * Whether expr contains the comparison "field = @request.auth.id" (either
 * way round, field a plain name without a relation hop): the sign that a
 * rule makes field the record's owner. False for anything it cannot parse.
 * Both strings are borrowed for the call.
 */
bool filter_compares_auth_id(const char *expr, const char *field);

/*
 * Compile a PocketBase sort string ("-created,name", "+title", "@random")
 * into *out, e.g. created descending, the name field ascending, then id.
 * Terms are comma separated, '-' means descending and '+' (optional)
 * ascending; allowed are id, created, updated, @random and the schema fields
 * of c of scalar types (not json, not hidden or secret ones unless auth is a
 * superuser). The list always ends with a tiebreak on id so the order is
 * stable. An empty sort gives created, id ascending (the store's default
 * order).
 *
 * auth may be NULL (a guest). Returns 0, or ERR_INVALID with e->field =
 * "sort" naming the term ("sort: unknown field 'foo' at position 1"); on
 * error *out is left as it was. The keys borrow names from c's schema.
 */
int filter_sort_compile(const struct collection *c, const char *sort,
			const struct filter_auth *auth, struct query_sort *out,
			struct err *e);

#endif
