/*
 * filter.c - PocketBase filter and sort expressions to store queries
 * (see filter.h and query.h).
 *
 * Three small stages: a scanner that cuts the text into tokens carrying
 * their byte offsets; a recursive-descent parser that builds an n-ary AST
 * whose depth is bounded by FILTER_MAX_DEPTH; and a resolver that checks
 * every operand against the schema and turns it into a typed literal or a
 * column / field / json path behind relation hops, giving a predicate
 * tree.  Errors carry 1-based character positions.  The SQL for the tree
 * is the store's business (query_sql.c).
 */
#include "filter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ---- helpers ------------------------------------------------------------ */

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_word(char c)
{
	return is_alpha(c) || is_digit(c) || c == '_';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A schema name we are willing to paste into SQL text: [A-Za-z_][A-Za-z0-9_]*.
 * Schema names are trusted, but checking costs nothing and keeps the promise
 * "no quote ever reaches the SQL text" local to this file. */
static bool plain_name(const char *s)
{
	size_t i;

	if (!s || !(is_alpha(s[0]) || s[0] == '_'))
		return false;
	for (i = 1; s[i]; i++)
		if (!is_word(s[i]))
			return false;
	return true;
}

/* The 1-based character (not byte) position of byte offset off in src. */
static size_t char_pos(const char *src, size_t off)
{
	size_t i, n = 1;

	for (i = 0; i < off && src[i]; i++)
		if (((unsigned char)src[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* User text made safe to quote in a one-line message: printable ASCII kept,
 * anything else shown as '?', cut at 64 bytes. */
static const char *show(char out[72], const char *s, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n && k < 64; i++) {
		unsigned char c = (unsigned char)s[i];

		out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < n) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
	return out;
}

/* "<what>: <message> at position N", ERR_INVALID, field = what. */
static int fail_at(struct err *e, const char *what, const char *src,
		   size_t off, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int fail_at(struct err *e, const char *what, const char *src,
		   size_t off, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set_field(e, ERR_INVALID, what, "%s: %s at position %zu",
			     what, msg, char_pos(src, off));
}

/* ---- scanner ------------------------------------------------------------ */

enum tok {
	TOK_EOF,
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_AND,
	TOK_OR,
	TOK_OP,
	TOK_IDENT,
	TOK_STRING,
	TOK_NUMBER,
};

static const struct {
	const char *text;
	enum query_op op;
} op_table[] = {
	{ "=", QUERY_EQ },  { "!=", QUERY_NEQ }, { ">", QUERY_GT },
	{ ">=", QUERY_GTE }, { "<", QUERY_LT },  { "<=", QUERY_LTE },
	{ "~", QUERY_LIKE }, { "!~", QUERY_NLIKE },
};

struct token {
	enum tok kind;
	size_t pos;       /* byte offset of the first character */
	size_t len;       /* bytes, quotes included for strings */
	enum query_op op; /* TOK_OP */
};

struct parser {
	const char *src;
	size_t len;
	size_t at;        /* scan offset */
	struct token tok; /* the current (lookahead) token */
	struct err *e;
};

static bool is_op_char(char c)
{
	return c && strchr("?=!<>~", c) != NULL;
}

static bool is_ident_char(char c)
{
	return is_word(c) || c == '.' || c == '@' || c == '#';
}

/* Scan the token starting at p->at into p->tok. */
static int scan(struct parser *p)
{
	const char *s = p->src;
	struct token *t = &p->tok;
	char shown[72];
	size_t i, j;

	while (p->at < p->len && is_space(s[p->at]))
		p->at++;
	i = j = p->at;
	t->pos = i;
	t->len = 0;
	if (i >= p->len) {
		t->kind = TOK_EOF;
		return 0;
	}
	if (s[i] == '(' || s[i] == ')') {
		t->kind = s[i] == '(' ? TOK_LPAREN : TOK_RPAREN;
		j = i + 1;
	} else if (s[i] == '&' || s[i] == '|') {
		while (j < p->len && (s[j] == '&' || s[j] == '|'))
			j++;
		if (j - i == 2 && s[i + 1] == s[i]) {
			t->kind = s[i] == '&' ? TOK_AND : TOK_OR;
		} else {
			return fail_at(p->e, "filter", s, i,
				       "invalid operator '%s'",
				       show(shown, s + i, j - i));
		}
	} else if (is_op_char(s[i])) {
		size_t k, skip;

		while (j < p->len && is_op_char(s[j]))
			j++;
		/* "?=" etc. are the any-of forms; every field here holds one
		 * value, so they mean the plain operator. */
		skip = (s[i] == '?' && j - i > 1) ? 1 : 0;
		t->kind = TOK_OP;
		for (k = 0; k < sizeof(op_table) / sizeof(op_table[0]); k++)
			if (strlen(op_table[k].text) == j - i - skip &&
			    !memcmp(op_table[k].text, s + i + skip, j - i - skip))
				break;
		if (k == sizeof(op_table) / sizeof(op_table[0]))
			return fail_at(p->e, "filter", s, i,
				       "invalid operator '%s'",
				       show(shown, s + i, j - i));
		t->op = op_table[k].op;
	} else if (s[i] == '\'' || s[i] == '"') {
		for (j = i + 1; j < p->len && s[j] != s[i]; j++)
			if (s[j] == '\\' && j + 1 < p->len)
				j++;
		if (j >= p->len)
			return fail_at(p->e, "filter", s, i, "unterminated string");
		t->kind = TOK_STRING;
		j++;
	} else if (is_digit(s[i]) || (s[i] == '-' && i + 1 < p->len &&
				       is_digit(s[i + 1]))) {
		size_t dots = 0;

		j = i + 1;
		while (j < p->len && (is_digit(s[j]) || s[j] == '.')) {
			dots += s[j] == '.';
			j++;
		}
		if (dots > 1 || s[j - 1] == '.')
			return fail_at(p->e, "filter", s, i,
				       "invalid number '%s'",
				       show(shown, s + i, j - i));
		t->kind = TOK_NUMBER;
	} else if (is_alpha(s[i]) || s[i] == '_' || s[i] == '@' ||
		   s[i] == '#') {
		while (j < p->len && is_ident_char(s[j]))
			j++;
		t->kind = TOK_IDENT;
	} else {
		return fail_at(p->e, "filter", s, i,
			       "unexpected character '%s'",
			       show(shown, s + i, 1));
	}
	t->len = j - i;
	p->at = j;
	return 0;
}

/* ---- parser ------------------------------------------------------------- */

struct operand {
	enum tok kind;    /* TOK_IDENT, TOK_STRING or TOK_NUMBER */
	size_t pos, len;
};

enum node_kind { N_OR, N_AND, N_CMP };

struct node {
	enum node_kind kind;
	struct node **kids;    /* N_OR, N_AND: two or more */
	size_t nkids, alloc;
	enum query_op op;      /* N_CMP */
	struct operand lhs, rhs;
	size_t pos;            /* N_CMP: the operator's offset */
};

static void node_free(struct node *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n);
}

/* Append kid to n; takes ownership of kid (freed on error). */
static int node_add(struct node *n, struct node *kid)
{
	struct node **k;
	size_t na;

	if (n->nkids == n->alloc) {
		na = n->alloc ? n->alloc * 2 : 4;
		k = realloc(n->kids, na * sizeof(*k));
		if (!k) {
			node_free(kid);
			return ERR_NOMEM;
		}
		n->kids = k;
		n->alloc = na;
	}
	n->kids[n->nkids++] = kid;
	return 0;
}

/* The "unexpected <token>" error for the current token. */
static int unexpected(struct parser *p)
{
	const struct token *t = &p->tok;
	char shown[72];

	if (t->kind == TOK_EOF)
		return fail_at(p->e, "filter", p->src, t->pos,
			       "unexpected end of expression");
	if (t->kind == TOK_STRING)
		return fail_at(p->e, "filter", p->src, t->pos,
			       "unexpected string");
	return fail_at(p->e, "filter", p->src, t->pos, "unexpected '%s'",
		       show(shown, p->src + t->pos, t->len));
}

static int parse_operand(struct parser *p, struct operand *o)
{
	if (p->tok.kind != TOK_IDENT && p->tok.kind != TOK_STRING &&
	    p->tok.kind != TOK_NUMBER)
		return unexpected(p);
	o->kind = p->tok.kind;
	o->pos = p->tok.pos;
	o->len = p->tok.len;
	return scan(p);
}

static int parse_list(struct parser *p, int depth, enum node_kind kind,
		      struct node **out);

/* primary := '(' expr ')' | operand OP operand */
static int parse_primary(struct parser *p, int depth, struct node **out)
{
	struct node *n = NULL;
	size_t open;
	int rc;

	if (p->tok.kind == TOK_LPAREN) {
		open = p->tok.pos;
		if (depth >= FILTER_MAX_DEPTH)
			return fail_at(p->e, "filter", p->src, open,
				       "parentheses nested deeper than %d",
				       FILTER_MAX_DEPTH);
		rc = scan(p);
		if (!rc)
			rc = parse_list(p, depth + 1, N_OR, &n);
		if (rc)
			goto out;
		if (p->tok.kind == TOK_EOF) {
			rc = fail_at(p->e, "filter", p->src, open,
				     "missing ')' for '('");
			goto out;
		}
		if (p->tok.kind != TOK_RPAREN) {
			rc = unexpected(p);
			goto out;
		}
		rc = scan(p);
		goto out;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return ERR_NOMEM;
	n->kind = N_CMP;
	rc = parse_operand(p, &n->lhs);
	if (rc)
		goto out;
	if (p->tok.kind != TOK_OP) {
		rc = unexpected(p);
		goto out;
	}
	n->op = p->tok.op;
	n->pos = p->tok.pos;
	rc = scan(p);
	if (!rc)
		rc = parse_operand(p, &n->rhs);
out:
	if (rc) {
		node_free(n);
		n = NULL;
	}
	*out = n;
	return rc;
}

/*
 * kind N_OR:  expr := and ( '||' and )*
 * kind N_AND: and  := primary ( '&&' primary )*
 * A list of one is returned as its only element.
 */
static int parse_list(struct parser *p, int depth, enum node_kind kind,
		      struct node **out)
{
	enum tok join = kind == N_OR ? TOK_OR : TOK_AND;
	struct node *kid = NULL, *list = NULL;
	int rc;

	*out = NULL;
	rc = kind == N_OR ? parse_list(p, depth, N_AND, &kid)
			  : parse_primary(p, depth, &kid);
	if (rc)
		goto out;
	if (p->tok.kind != join) {
		*out = kid;
		return 0;
	}
	list = calloc(1, sizeof(*list));
	if (!list) {
		rc = ERR_NOMEM;
		goto out;
	}
	list->kind = kind;
	rc = node_add(list, kid);
	kid = NULL;
	while (!rc && p->tok.kind == join) {
		rc = scan(p);
		if (rc)
			break;
		rc = kind == N_OR ? parse_list(p, depth, N_AND, &kid)
				  : parse_primary(p, depth, &kid);
		if (!rc)
			rc = node_add(list, kid);
		kid = NULL;
	}
	if (!rc) {
		*out = list;
		list = NULL;
	}
out:
	node_free(kid);
	node_free(list);
	return rc;
}

/* ---- resolver ------------------------------------------------------------ */

/* Turns parsed operands into query values, checking every name against
 * the schema and binding @request.* and literals. */
struct resolver {
	const struct schema *s;
	const struct collection *c;
	const struct filter_auth *auth;
	const char *src;
	struct err *e;
	bool guard;                   /* a caller's filter: relation hops see
	                               * only what the caller may view */
	bool admin;                   /* ... and any email (an admin) */
	const struct query_hop *base; /* hops every field path starts with:
	                               * a target's view rule read through
	                               * the hops that reach it */
	size_t nbase;
};

static bool may_see(const struct resolver *em, const struct field *f)
{
	return !(f->hidden || f->secret) || (em->auth && em->auth->superuser);
}

static const char *const system_columns[] = { "id", "created", "updated" };

/* A collection's name field is also its records.name column (the store
 * keeps the two equal), which an index covers: filters and sorts on it use
 * the column, so "name > 'x'" and "sort=-name" need no scan of every
 * row's JSON. */
static bool name_column(const struct collection *c, const struct field *f)
{
	return c->name_field && f && f->type == FT_TEXT &&
	       !strcmp(f->name, c->name_field);
}

static const char *system_column(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(system_columns) / sizeof(system_columns[0]); i++)
		if (!strcmp(name, system_columns[i]))
			return system_columns[i];
	return NULL;
}

/*
 * Resolve the dotted path segs[i..n) read from collection coll into v:
 * relation hops (appended to v->hops), then a column, a field, or a path
 * into a json field.
 */
static int resolve_path(struct resolver *em, const struct collection *coll,
			char **segs, size_t i, size_t n,
			const struct operand *opd, struct query_val *v)
{
	const char *name = segs[i], *col;
	const struct field *f;
	const struct collection *target;
	char shown[72];
	bool last = i + 1 == n;
	size_t k;

	col = system_column(name);
	f = col ? NULL : collection_field(coll, name);
	if (!col && !f)
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "unknown field '%s'",
			       show(shown, em->src + opd->pos, opd->len));
	if (f && (f->type == FT_PASSWORD || !may_see(em, f)))
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "field '%s' cannot be filtered",
			       show(shown, em->src + opd->pos, opd->len));
	if (col) {
		if (!last)
			return fail_at(em->e, "filter", em->src, opd->pos,
				       "'%s' is not a relation in '%s'", name,
				       show(shown, em->src + opd->pos,
					    opd->len));
		v->kind = QUERY_COLUMN;
		v->name = col;
		return 0;
	}
	if (last) {
		/* the hops, if any, are in v already */
		v->kind = name_column(coll, f) ? QUERY_COLUMN : QUERY_FIELD;
		v->name = v->kind == QUERY_COLUMN ? "name" : f->name;
		v->zero = v->kind == QUERY_FIELD &&
			  (f->type == FT_BOOL || f->type == FT_NUMBER);
		return 0;
	}
	if (f->type == FT_JSON) {
		v->kind = QUERY_JSON_PATH;
		v->name = f->name;
		v->keys = json_array();
		for (k = i + 1; v->keys && k < n; k++)
			if (json_array_append_new(v->keys,
						  json_string(segs[k])))
				return ERR_NOMEM;
		return v->keys ? 0 : ERR_NOMEM;
	}
	if (f->type != FT_RELATION)
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "'%s' is not a relation in '%s'", name,
			       show(shown, em->src + opd->pos, opd->len));
	if (v->nhops >= FILTER_MAX_HOPS)
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "'%s' has more than %d relation hops",
			       show(shown, em->src + opd->pos, opd->len),
			       FILTER_MAX_HOPS);
	target = f->target ? schema_find(em->s, f->target) : NULL;
	if (!target || !plain_name(target->name))
		return err_set_field(em->e, ERR_INTERNAL, "filter",
				     "filter: relation '%s' has no usable "
				     "target collection", f->name);
	v->hops[v->nhops].field = f->name;
	v->hops[v->nhops].target = target->name;
	v->nhops++;
	return resolve_path(em, target, segs, i + 1, n, opd, v);
}

/* A copy of an auth record value fit for binding. Caller owns the result;
 * NULL on allocation failure. */
static json_t *bind_value(json_t *v)
{
	char *text;
	json_t *r;

	if (!v)
		return json_null();
	if (json_is_object(v) || json_is_array(v)) {
		text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		r = text ? json_string(text) : NULL;
		free(text);
		return r;
	}
	return json_copy(v);
}

/* Standard auth-record fields PocketBase has whether or not the schema
 * lists them. */
static const char *const auth_builtin[] = {
	"id", "collectionId", "collectionName", "created", "updated",
	"email", "emailVisibility", "verified",
};

/* Resolve @request.auth.<name> into a bound value. */
static int resolve_auth(struct resolver *em, const char *name,
			const struct operand *opd, struct query_val *t)
{
	const struct collection *ac = NULL;
	const struct field *f = NULL;
	json_t *rec = em->auth ? em->auth->record : NULL;
	bool builtin = false, superuser = em->auth && em->auth->superuser;
	char shown[72];
	size_t i;

	for (i = 0; i < em->s->ncollections && !ac; i++)
		if (em->s->collections[i].auth)
			ac = &em->s->collections[i];
	for (i = 0; i < sizeof(auth_builtin) / sizeof(auth_builtin[0]); i++)
		builtin |= !strcmp(name, auth_builtin[i]);
	f = ac && *name ? collection_field(ac, name) : NULL;
	if (!builtin && !f)
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "unknown field '%s'",
			       show(shown, em->src + opd->pos, opd->len));
	if (f && f->hidden)
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "field '%s' cannot be filtered",
			       show(shown, em->src + opd->pos, opd->len));
	if (!strcmp(name, "id")) {
		json_t *id = rec ? json_object_get(rec, "id") : NULL;

		t->literal = json_string(json_is_string(id) ?
				       json_string_value(id) : "");
	} else if (!strcmp(name, "collectionName") ||
		   !strcmp(name, "collectionId")) {
		const char *v = NULL;

		if (superuser)
			v = "_superusers";
		else if (rec && ac)
			v = !strcmp(name, "collectionId") ? ac->id : ac->name;
		t->literal = v ? json_string(v) : json_null();
	} else {
		t->literal = bind_value(rec ? json_object_get(rec, name) : NULL);
	}
	return t->literal ? 0 : ERR_NOMEM;
}

/* Resolve @request.body.<name>, a field of the collection, into a bound
 * value (null when not submitted). */
static int resolve_body(struct resolver *em, const char *name,
			const struct operand *opd, struct query_val *t)
{
	json_t *body = em->auth ? em->auth->body : NULL;
	char shown[72];

	if (!*name || !collection_field(em->c, name))
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "unknown field '%s'",
			       show(shown, em->src + opd->pos, opd->len));
	t->literal = bind_value(body ? json_object_get(body, name) : NULL);
	return t->literal ? 0 : ERR_NOMEM;
}

/* Decode a quoted string token: \<quote> and \\ lose their backslash,
 * other backslashes stay (so LIKE escapes such as \_ pass through). */
static json_t *decode_string(const char *s, size_t len)
{
	char q = s[0], *d;
	size_t i, k = 0;
	json_t *v;

	d = malloc(len);
	if (!d)
		return NULL;
	for (i = 1; i + 1 < len; i++) {
		if (s[i] == '\\' && i + 2 < len &&
		    (s[i + 1] == q || s[i + 1] == '\\'))
			i++;
		d[k++] = s[i];
	}
	v = json_stringn(d, k);
	free(d);
	return v;
}

static json_t *decode_number(const char *s, size_t len)
{
	char tmp[FILTER_MAX_LEN + 1];
	long long ll;
	double d;
	char *end;

	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (!memchr(tmp, '.', len)) {
		errno = 0;
		ll = strtoll(tmp, &end, 10);
		if (!errno && !*end)
			return json_integer(ll);
	}
	d = strtod(tmp, &end);
	if (*end || !isfinite(d))
		return NULL;
	return json_real(d);
}

static int resolve_operand(struct resolver *em, const struct operand *opd,
			   struct query_val *t)
{
	const char *s = em->src + opd->pos;
	char shown[72], *name = NULL, *segs[16], *p;
	size_t nsegs = 0, i;
	int rc = 0;

	if (opd->kind == TOK_STRING) {
		t->literal = decode_string(s, opd->len);
		if (!t->literal)
			rc = fail_at(em->e, "filter", em->src, opd->pos,
				     "string is not valid UTF-8");
		goto out;
	}
	if (opd->kind == TOK_NUMBER) {
		t->literal = decode_number(s, opd->len);
		if (!t->literal)
			rc = fail_at(em->e, "filter", em->src, opd->pos,
				     "invalid number '%s'",
				     show(shown, s, opd->len));
		goto out;
	}
	name = strndup(s, opd->len);
	if (!name) {
		rc = ERR_NOMEM;
		goto out;
	}
	if (!strcasecmp(name, "true") || !strcasecmp(name, "false")) {
		t->literal = json_boolean(!strcasecmp(name, "true"));
	} else if (!strcasecmp(name, "null")) {
		t->literal = json_null();
	} else if (!strcmp(name, "@now")) {
		char now[TIME_LEN + 1];

		util_now(now);
		t->literal = json_string(now);
	} else if (!strncmp(name, "@request.auth.", 14) &&
		   !strchr(name + 14, '.') && !strpbrk(name + 14, "@#")) {
		rc = resolve_auth(em, name + 14, opd, t);
		goto out;
	} else if (!strncmp(name, "@request.body.", 14) &&
		   !strchr(name + 14, '.') && !strpbrk(name + 14, "@#")) {
		rc = resolve_body(em, name + 14, opd, t);
		goto out;
	} else if (strpbrk(name, "@#")) {
		rc = fail_at(em->e, "filter", em->src, opd->pos,
			     "unsupported identifier '%s'",
			     show(shown, s, opd->len));
		goto out;
	} else {
		/* a field or a dotted path: split in place */
		for (p = name; ; p++) {
			if (nsegs == sizeof(segs) / sizeof(segs[0])) {
				rc = fail_at(em->e, "filter", em->src,
					     opd->pos, "path '%s' is too long",
					     show(shown, s, opd->len));
				goto out;
			}
			segs[nsegs++] = p;
			p = strchr(p, '.');
			if (!p)
				break;
			*p = '\0';
		}
		for (i = 0; i < nsegs; i++) {
			if (!segs[i][0]) {
				rc = fail_at(em->e, "filter", em->src,
					     opd->pos,
					     "invalid identifier '%s'",
					     show(shown, s, opd->len));
				goto out;
			}
		}
		if (em->nbase)
			memcpy(t->hops, em->base,
			       em->nbase * sizeof(*em->base));
		t->nhops = em->nbase;
		rc = resolve_path(em, em->c, segs, 0, nsegs, opd, t);
		goto out;
	}
	if (!t->literal)
		rc = ERR_NOMEM;
out:
	free(name);
	return rc;
}

static int compile(const struct resolver *tmpl, const char *expr,
		   struct query_pred **out, struct err *e);

/* What the caller may read of the record v->hops[0..k) reaches: the
 * target's view rule read through those hops, appended to all. A NULL
 * rule hides every record (superusers never come here). */
static int guard_hop(struct resolver *em, const struct operand *opd,
		     const struct query_val *v, size_t k,
		     struct query_pred *all)
{
	const struct collection *tc = schema_find(em->s, v->hops[k - 1].target);
	struct resolver sub = *em;
	struct query_pred *p = NULL;
	struct err le = ERR_INIT;
	char shown[72];
	int rc;

	if (!tc)
		return err_set_field(em->e, ERR_INTERNAL, "filter",
				     "filter: no collection '%s'",
				     v->hops[k - 1].target);
	if (!tc->rules[RULE_VIEW]) {
		p = query_pred_new(QUERY_NOT);
		if (!p || query_pred_add(p, query_pred_new(QUERY_TRUE))) {
			query_pred_free(p);
			return ERR_NOMEM;
		}
		return query_pred_add(all, p);
	}
	if (!*tc->rules[RULE_VIEW])
		return 0;
	sub.c = tc;
	sub.guard = false;    /* rules are trusted: no guard of their own */
	sub.base = v->hops;
	sub.nbase = k;
	rc = compile(&sub, tc->rules[RULE_VIEW], &p, &le);
	if (rc == ERR_INVALID)
		/* the rule's own hops on top of the path's exceed the limit */
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "'%s' cannot be filtered: %s",
			       show(shown, em->src + opd->pos, opd->len),
			       le.msg);
	if (rc) {
		if (em->e)
			*em->e = le;
		return rc;
	}
	return query_pred_add(all, p);
}

/* An auth collection's email, read through relation hops, only where
 * the caller is that record, is an admin, or the record shows its email
 * (emailVisibility): "hops.id = me || hops.emailVisibility = true". */
static int guard_email(struct resolver *em, const struct query_val *v,
		       struct query_pred *all)
{
	const struct collection *tc = schema_find(em->s,
						  v->hops[v->nhops - 1].target);
	json_t *me = em->auth && em->auth->record ?
		     json_object_get(em->auth->record, "id") : NULL;
	struct query_val id, vis;
	struct query_pred *p;

	if (!tc || !tc->auth || v->kind != QUERY_FIELD ||
	    strcmp(v->name, "email") || em->admin)
		return 0;
	id = query_column("id");
	vis = query_field("emailVisibility", true);
	memcpy(id.hops, v->hops, v->nhops * sizeof(*v->hops));
	memcpy(vis.hops, v->hops, v->nhops * sizeof(*v->hops));
	id.nhops = vis.nhops = v->nhops;
	p = query_pred_new(QUERY_OR);
	if (!p)
		return ERR_NOMEM;
	if (query_pred_add(p, query_cmp(QUERY_EQ, id,
					query_literal(json_is_string(me) ?
						      json_incref(me) :
						      json_string("")))) ||
	    query_pred_add(p, query_cmp(QUERY_EQ, vis,
					query_literal(json_true())))) {
		query_pred_free(p);
		return ERR_NOMEM;
	}
	return query_pred_add(all, p);
}

/* The guards of one side of a comparison: every hop's view rule, then
 * email visibility. */
static int guard_val(struct resolver *em, const struct operand *opd,
		     const struct query_val *v, struct query_pred *all)
{
	size_t k;
	int rc = 0;

	for (k = 1; !rc && k <= v->nhops; k++)
		rc = guard_hop(em, opd, v, k, all);
	if (!rc && v->nhops)
		rc = guard_email(em, v, all);
	return rc;
}

/* "l op r AND the guards of both sides", so that a record the caller may
 * not view never matches (the comparison and its negation alike). Takes
 * ownership of l and r; *out owned by the caller (NULL on error). */
static int guarded_cmp(struct resolver *em, const struct node *n,
		       struct query_val l, struct query_val r,
		       struct query_pred **out)
{
	struct query_pred *cmp = query_cmp(n->op, l, r);  /* l, r are its */
	struct query_pred *all = query_pred_new(QUERY_AND);
	int rc;

	*out = NULL;
	if (!all || !cmp) {
		query_pred_free(cmp);
		query_pred_free(all);
		return ERR_NOMEM;
	}
	/* the comparison first, so the SQL reads as the filter does; cmp
	 * stays readable while all owns it */
	rc = query_pred_add(all, cmp);
	if (!rc)
		rc = guard_val(em, &n->lhs, &cmp->lhs, all);
	if (!rc)
		rc = guard_val(em, &n->rhs, &cmp->rhs, all);
	if (rc) {
		query_pred_free(all);
		return rc;
	}
	if (all->nkids == 1) {   /* nothing to guard: every target is open */
		*out = all->kids[0];
		all->nkids = 0;
		query_pred_free(all);
		return 0;
	}
	*out = all;
	return 0;
}

/* The query node of parsed node n, resolved; *out owned by the caller
 * (NULL on error). */
static int build_node(struct resolver *em, const struct node *n,
		      struct query_pred **out)
{
	struct query_val l, r;
	struct query_pred *kid = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (n->kind != N_CMP) {
		*out = query_pred_new(n->kind == N_AND ? QUERY_AND : QUERY_OR);
		if (!*out)
			return ERR_NOMEM;
		for (i = 0; !rc && i < n->nkids; i++) {
			rc = build_node(em, n->kids[i], &kid);
			if (!rc)
				rc = query_pred_add(*out, kid);
		}
		if (rc) {
			query_pred_free(*out);
			*out = NULL;
		}
		return rc;
	}
	memset(&l, 0, sizeof(l));
	memset(&r, 0, sizeof(r));
	rc = resolve_operand(em, &n->lhs, &l);
	if (!rc)
		rc = resolve_operand(em, &n->rhs, &r);
	if (rc) {
		query_val_release(&l);
		query_val_release(&r);
		return rc;
	}
	if (em->guard && !(em->auth && em->auth->superuser) &&
	    (l.nhops || r.nhops))
		return guarded_cmp(em, n, l, r, out);
	*out = query_cmp(n->op, l, r);   /* l and r are its now */
	return *out ? 0 : ERR_NOMEM;
}

static bool blank(const char *s)
{
	while (is_space(*s))
		s++;
	return !*s;
}

/* Compile expr with the resolver tmpl (its src and e are set here). */
static int compile(const struct resolver *tmpl, const char *expr,
		   struct query_pred **out, struct err *e)
{
	struct parser p = { 0 };
	struct resolver em = *tmpl;
	struct node *root = NULL;
	struct query_pred *pred = NULL;
	struct err le = ERR_INIT;   /* our own, so a stale e->code never counts */
	size_t len;
	int rc;

	*out = NULL;
	if (!expr) {
		rc = err_set_field(&le, ERR_INVALID, "filter",
				   "filter: no expression");
		goto out;
	}
	len = strlen(expr);
	if (len > FILTER_MAX_LEN) {
		rc = err_set_field(&le, ERR_INVALID, "filter",
				   "filter: expression is longer than %d bytes",
				   FILTER_MAX_LEN);
		goto out;
	}
	if (!len) {
		pred = query_pred_new(QUERY_TRUE);
		rc = pred ? 0 : ERR_NOMEM;
	} else if (blank(expr)) {
		rc = err_set_field(&le, ERR_INVALID, "filter",
				   "filter: empty expression");
	} else {
		p.src = expr;
		p.len = len;
		p.e = &le;
		rc = scan(&p);
		if (!rc)
			rc = parse_list(&p, 0, N_OR, &root);
		if (!rc && p.tok.kind != TOK_EOF)
			rc = unexpected(&p);
		em.src = expr;
		em.e = &le;
		if (!rc)
			rc = build_node(&em, root, &pred);
	}
	if (!rc) {
		*out = pred;
		pred = NULL;
	}
out:
	if (rc && le.code && e)
		*e = le;
	else if (rc)
		err_set_field(e, rc, "filter", "filter: %s", err_name(rc));
	node_free(root);
	query_pred_free(pred);
	return rc;
}

int filter_compile(const struct schema *s, const struct collection *c,
		   const char *expr, const struct filter_auth *auth,
		   struct query_pred **out, struct err *e)
{
	struct resolver em = { .s = s, .c = c, .auth = auth };

	return compile(&em, expr, out, e);
}

int filter_compile_caller(const struct schema *s,
			  const struct collection *c, const char *expr,
			  const struct filter_auth *auth, bool admin,
			  struct query_pred **out, struct err *e)
{
	struct resolver em = { .s = s, .c = c, .auth = auth, .guard = true,
			       .admin = admin };

	return compile(&em, expr, out, e);
}

/* Whether an operand can depend on the record: every identifier but
 * @request.auth.<field> does (fields, relation paths, @now,
 * @request.body.*, and any longer @request.auth path, which would read
 * other records). */
static bool operand_reads_record(const char *src, const struct operand *o)
{
	static const char auth[] = "@request.auth.";
	const size_t n = sizeof(auth) - 1;

	if (o->kind != TOK_IDENT)
		return false;
	return o->len <= n || strncmp(src + o->pos, auth, n) != 0 ||
	       memchr(src + o->pos + n, '.', o->len - n) != NULL;
}

static bool node_reads_record(const char *src, const struct node *n)
{
	size_t i;

	if (n->kind == N_CMP)
		return operand_reads_record(src, &n->lhs) ||
		       operand_reads_record(src, &n->rhs);
	for (i = 0; i < n->nkids; i++)
		if (node_reads_record(src, n->kids[i]))
			return true;
	return false;
}

/* The AST of a non-empty expr, or NULL when it does not parse (or is
 * blank or too long); caller frees it with node_free(). For questions
 * asked about rule text, where a parse error needs no message. */
static struct node *parse_quiet(const char *expr)
{
	struct parser p = { 0 };
	struct err le = ERR_INIT;
	struct node *root = NULL;

	if (!expr || !*expr || strlen(expr) > FILTER_MAX_LEN || blank(expr))
		return NULL;
	p.src = expr;
	p.len = strlen(expr);
	p.e = &le;
	if (scan(&p) == 0 && parse_list(&p, 0, N_OR, &root) == 0 &&
	    p.tok.kind == TOK_EOF)
		return root;
	node_free(root);
	return NULL;
}

bool filter_reads_record(const char *expr)
{
	struct node *root;
	bool reads;

	if (!expr || !*expr)
		return false;
	root = parse_quiet(expr);
	reads = root ? node_reads_record(expr, root) : true;
	node_free(root);
	return reads;
}

/* Whether operand o is exactly the identifier word. */
static bool operand_is(const char *src, const struct operand *o,
		       const char *word)
{
	return o->kind == TOK_IDENT && o->len == strlen(word) &&
	       !strncmp(src + o->pos, word, o->len);
}

static bool node_compares_auth_id(const char *src, const struct node *n,
				  const char *field)
{
	size_t i;

	if (n->kind == N_CMP)
		return n->op == QUERY_EQ &&
		       ((operand_is(src, &n->lhs, field) &&
			 operand_is(src, &n->rhs, "@request.auth.id")) ||
			(operand_is(src, &n->rhs, field) &&
			 operand_is(src, &n->lhs, "@request.auth.id")));
	for (i = 0; i < n->nkids; i++)
		if (node_compares_auth_id(src, n->kids[i], field))
			return true;
	return false;
}

bool filter_compares_auth_id(const char *expr, const char *field)
{
	struct node *root = field ? parse_quiet(expr) : NULL;
	bool found = root && node_compares_auth_id(expr, root, field);

	node_free(root);
	return found;
}

/* ---- sort --------------------------------------------------------------- */

int filter_sort_compile(const struct collection *c, const char *sort,
			const struct filter_auth *auth, struct query_sort *out,
			struct err *e)
{
	struct query_sort o = { 0 };
	struct resolver em = { .auth = auth };
	const struct field *f;
	const char *col;
	char shown[72], name[SORT_MAX_LEN + 1];
	size_t len, i = 0, start, end, nterms = 0, k;
	struct err le = ERR_INIT;
	bool has_id = false, desc;
	int rc = 0;

	if (!sort)
		sort = "";
	len = strlen(sort);
	if (len > SORT_MAX_LEN) {
		rc = err_set_field(&le, ERR_INVALID, "sort",
				   "sort: longer than %d bytes", SORT_MAX_LEN);
		goto out;
	}
	if (!len) {
		rc = query_sort_add(&o, QUERY_SORT_COLUMN, "created", false,
				    false);
		if (!rc)
			rc = query_sort_add(&o, QUERY_SORT_COLUMN, "id", false,
					    false);
		goto out;
	}
	while (!rc && i <= len) {
		/* one term: [ws] [+|-] name [ws] (',' | end) */
		while (i < len && is_space(sort[i]))
			i++;
		start = i;
		desc = false;
		if (i < len && (sort[i] == '-' || sort[i] == '+')) {
			desc = sort[i] == '-';
			i++;
		}
		k = i;
		while (i < len && sort[i] != ',')
			i++;
		end = i;
		while (end > k && is_space(sort[end - 1]))
			end--;
		i++;    /* past the comma (or the end) */
		if (end == k) {
			rc = fail_at(&le, "sort", sort, start, "empty field");
			goto out;
		}
		if (++nterms > SORT_MAX_TERMS) {
			rc = fail_at(&le, "sort", sort, start,
				     "more than %d fields", SORT_MAX_TERMS);
			goto out;
		}
		memcpy(name, sort + k, end - k);
		name[end - k] = '\0';
		if (!strcmp(name, "@random")) {
			rc = query_sort_add(&o, QUERY_SORT_RANDOM, NULL, false,
					    desc);
			continue;
		}
		col = system_column(name);
		f = (col || !plain_name(name)) ? NULL : collection_field(c, name);
		if (!col && !f) {
			rc = fail_at(&le, "sort", sort, k, "unknown field '%s'",
				     show(shown, name, end - k));
			goto out;
		}
		if (f && (f->type == FT_JSON || f->type == FT_PASSWORD ||
			  !may_see(&em, f))) {
			rc = fail_at(&le, "sort", sort, k,
				     "field '%s' cannot be sorted on",
				     show(shown, name, end - k));
			goto out;
		}
		if (col) {
			has_id |= col == system_columns[0];
			rc = query_sort_add(&o, QUERY_SORT_COLUMN, col, false,
					    desc);
		} else if (name_column(c, f)) {
			rc = query_sort_add(&o, QUERY_SORT_COLUMN, "name", false,
					    desc);
		} else {
			rc = query_sort_add(&o, QUERY_SORT_FIELD, f->name,
					    f->type == FT_BOOL ||
					    f->type == FT_NUMBER, desc);
		}
	}
	if (!rc && !has_id)
		rc = query_sort_add(&o, QUERY_SORT_COLUMN, "id", false, false);
out:
	if (!rc)
		*out = o;
	else if (le.code && e)
		*e = le;
	else
		err_set_field(e, rc, "sort", "sort: %s", err_name(rc));
	return rc;
}
