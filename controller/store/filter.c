/*
 * filter.c - PocketBase filter and sort expressions to parameterised SQL
 * (see filter.h).
 *
 * Three small stages: a scanner that cuts the text into tokens carrying
 * their byte offsets; a recursive-descent parser that builds an n-ary AST
 * whose depth is bounded by FILTER_MAX_DEPTH; and an emitter that resolves
 * every operand against the schema into either one bound value or a SQL
 * expression made only of schema names, and joins them with PocketBase's
 * null/empty rules.  Errors carry 1-based character positions.
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

/* ---- SQL output with a sticky error -------------------------------------- */

/*
 * SQL text plus its binds. Every append is a no-op once rc is set, so the
 * emitter can write a whole fragment and check once.
 */
struct sqlout {
	struct buf sql;
	json_t *args;
	int rc;
};

static void so_init(struct sqlout *o)
{
	buf_init(&o->sql, 0);
	o->args = json_array();
	o->rc = o->args ? 0 : ERR_NOMEM;
}

static void so_release(struct sqlout *o)
{
	buf_release(&o->sql);
	json_decref(o->args);
	o->args = NULL;
}

static void so_puts(struct sqlout *o, const char *s)
{
	if (!o->rc)
		o->rc = buf_puts(&o->sql, s);
}

static void so_printf(struct sqlout *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void so_printf(struct sqlout *o, const char *fmt, ...)
{
	va_list ap;

	if (o->rc)
		return;
	va_start(ap, fmt);
	o->rc = buf_vprintf(&o->sql, fmt, ap);
	va_end(ap);
}

/* Append "?" and bind v. Steals v (also on error). */
static void so_bind_new(struct sqlout *o, json_t *v)
{
	if (!v && !o->rc)
		o->rc = ERR_NOMEM;
	if (o->rc) {
		json_decref(v);
		return;
	}
	o->rc = buf_putc(&o->sql, '?');
	if (!o->rc && json_array_append_new(o->args, v) < 0)
		o->rc = ERR_NOMEM;
	else if (o->rc)
		json_decref(v);
}

/* Append another fragment with its binds. */
static void so_add(struct sqlout *o, const struct sqlout *from)
{
	if (!o->rc && from->rc)
		o->rc = from->rc;
	if (!o->rc)
		o->rc = buf_add(&o->sql, from->sql.ptr, from->sql.len);
	if (!o->rc && json_array_extend(o->args, from->args) < 0)
		o->rc = ERR_NOMEM;
}

/* Append "json_extract(<tab>.data, '$.<field>')" for a trusted name. */
static void so_extract(struct sqlout *o, const char *tab, const char *field)
{
	if (!o->rc && !plain_name(field))
		o->rc = ERR_INTERNAL;
	so_printf(o, "json_extract(%s.data, '$.%s')", tab, field);
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

enum op { OP_EQ, OP_NEQ, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_LIKE, OP_NLIKE };

static const struct {
	const char *text;
	enum op op;
} op_table[] = {
	{ "=", OP_EQ },   { "!=", OP_NEQ }, { ">", OP_GT },    { ">=", OP_GTE },
	{ "<", OP_LT },   { "<=", OP_LTE }, { "~", OP_LIKE },  { "!~", OP_NLIKE },
};

static const char *op_sql[] = {
	[OP_GT] = " > ", [OP_GTE] = " >= ", [OP_LT] = " < ", [OP_LTE] = " <= ",
};

struct token {
	enum tok kind;
	size_t pos;       /* byte offset of the first character */
	size_t len;       /* bytes, quotes included for strings */
	enum op op;       /* TOK_OP */
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
	enum op op;            /* N_CMP */
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

/* ---- emitter ------------------------------------------------------------ */

struct emitter {
	const struct schema *s;
	const struct collection *c;
	const struct filter_auth *auth;
	const char *src;
	int nalias;              /* r1, r2, ... for relation subqueries */
	struct err *e;
};

/* One resolved operand: a bound value, or a SQL expression over rows. */
struct term {
	json_t *value;           /* owned; NULL for an expression */
	struct sqlout x;         /* the expression when value is NULL */
};

static bool term_empty(const struct term *t)
{
	return t->value && (json_is_null(t->value) ||
			    (json_is_string(t->value) &&
			     json_string_length(t->value) == 0));
}

/* A bound value other than null and "": PocketBase compares it directly. */
static bool term_known(const struct term *t)
{
	return t->value && !term_empty(t);
}

static void so_term(struct sqlout *o, const struct term *t)
{
	if (t->value)
		so_bind_new(o, json_incref(t->value));
	else
		so_add(o, &t->x);
}

static bool may_see(const struct emitter *em, const struct field *f)
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

/* Bind '$.<field>.<key>[<n>]...' for a path into a json field: the keys
 * are user text, so they travel as a parameter, not as SQL. */
static void so_json_path(struct sqlout *o, const char *tab, const char *field,
			 char **segs, size_t nsegs)
{
	struct buf path = BUF_INIT;
	int rc;
	size_t i;

	rc = buf_printf(&path, "$.%s", field);
	for (i = 0; !rc && i < nsegs; i++) {
		const char *k = segs[i];

		while (*k && is_digit(*k))
			k++;
		rc = *k ? buf_printf(&path, ".%s", segs[i])
			: buf_printf(&path, "[%s]", segs[i]);
	}
	if (!o->rc && rc)
		o->rc = rc;
	so_printf(o, "json_extract(%s.data, ", tab);
	so_bind_new(o, rc ? NULL : json_string(path.ptr));
	so_puts(o, ")");
	buf_release(&path);
}

/*
 * Write into o the SQL value of the dotted path segs[i..n) read from
 * collection coll, whose row is aliased tab. Relation hops recurse into a
 * correlated scalar subquery, one alias per hop.
 */
static int resolve_path(struct emitter *em, const struct collection *coll,
			const char *tab, char **segs, size_t i, size_t n,
			int hops, const struct operand *opd, struct sqlout *o)
{
	const char *name = segs[i], *col;
	const struct field *f;
	const struct collection *target;
	char shown[72], alias[16];
	bool last = i + 1 == n;
	int rc;

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
		so_printf(o, "%s.%s", tab, col);
		return 0;
	}
	if (last) {
		if (name_column(coll, f)) {
			so_printf(o, "%s.name", tab);
		} else if (f->type == FT_BOOL || f->type == FT_NUMBER) {
			/* PocketBase's columns default to false / 0. */
			so_puts(o, "COALESCE(");
			so_extract(o, tab, f->name);
			so_puts(o, ", 0)");
		} else {
			so_extract(o, tab, f->name);
		}
		return 0;
	}
	if (f->type == FT_JSON) {
		so_json_path(o, tab, f->name, segs + i + 1, n - i - 1);
		return 0;
	}
	if (f->type != FT_RELATION)
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "'%s' is not a relation in '%s'", name,
			       show(shown, em->src + opd->pos, opd->len));
	if (hops >= FILTER_MAX_HOPS)
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "'%s' has more than %d relation hops",
			       show(shown, em->src + opd->pos, opd->len),
			       FILTER_MAX_HOPS);
	target = f->target ? schema_find(em->s, f->target) : NULL;
	if (!target || !plain_name(target->name))
		return err_set_field(em->e, ERR_INTERNAL, "filter",
				     "filter: relation '%s' has no usable "
				     "target collection", f->name);
	snprintf(alias, sizeof(alias), "r%d", ++em->nalias);
	so_puts(o, "(SELECT ");
	rc = resolve_path(em, target, alias, segs, i + 1, n, hops + 1, opd, o);
	if (rc)
		return rc;
	so_printf(o, " FROM records %s WHERE %s.collection = '%s' AND %s.id = ",
		  alias, alias, target->name, alias);
	so_extract(o, tab, f->name);
	so_puts(o, ")");
	return 0;
}

/* A copy of an auth record value fit for binding. Caller owns the result;
 * NULL on allocation failure. */
static json_t *bind_value(json_t *v)
{
	char *text;
	json_t *r;

	if (!v)
		return json_null();
	if (json_is_boolean(v))
		return json_integer(json_is_true(v));
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
static int resolve_auth(struct emitter *em, const char *name,
			const struct operand *opd, struct term *t)
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

		t->value = json_string(json_is_string(id) ?
				       json_string_value(id) : "");
	} else if (!strcmp(name, "collectionName") ||
		   !strcmp(name, "collectionId")) {
		const char *v = NULL;

		if (superuser)
			v = "_superusers";
		else if (rec && ac)
			v = !strcmp(name, "collectionId") ? ac->id : ac->name;
		t->value = v ? json_string(v) : json_null();
	} else {
		t->value = bind_value(rec ? json_object_get(rec, name) : NULL);
	}
	return t->value ? 0 : ERR_NOMEM;
}

/* Resolve @request.body.<name>, a field of the collection, into a bound
 * value (null when not submitted). */
static int resolve_body(struct emitter *em, const char *name,
			const struct operand *opd, struct term *t)
{
	json_t *body = em->auth ? em->auth->body : NULL;
	char shown[72];

	if (!*name || !collection_field(em->c, name))
		return fail_at(em->e, "filter", em->src, opd->pos,
			       "unknown field '%s'",
			       show(shown, em->src + opd->pos, opd->len));
	t->value = bind_value(body ? json_object_get(body, name) : NULL);
	return t->value ? 0 : ERR_NOMEM;
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

static int resolve_operand(struct emitter *em, const struct operand *opd,
			   struct term *t)
{
	const char *s = em->src + opd->pos;
	char shown[72], *name = NULL, *segs[16], *p;
	size_t nsegs = 0, i;
	int rc = 0;

	if (opd->kind == TOK_STRING) {
		t->value = decode_string(s, opd->len);
		if (!t->value)
			rc = fail_at(em->e, "filter", em->src, opd->pos,
				     "string is not valid UTF-8");
		goto out;
	}
	if (opd->kind == TOK_NUMBER) {
		t->value = decode_number(s, opd->len);
		if (!t->value)
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
		t->value = json_integer(!strcasecmp(name, "true"));
	} else if (!strcasecmp(name, "null")) {
		t->value = json_null();
	} else if (!strcmp(name, "@now")) {
		char now[TIME_LEN + 1];

		util_now(now);
		t->value = json_string(now);
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
		so_init(&t->x);
		rc = resolve_path(em, em->c, "records", segs, 0, nsegs, 0, opd,
				  &t->x);
		if (!rc)
			rc = t->x.rc;
		goto out;
	}
	if (!t->value)
		rc = ERR_NOMEM;
out:
	free(name);
	return rc;
}

/* The LIKE pattern for a bound value: as is when it already holds an
 * unescaped '%', otherwise '%' + value with '%' and '_' escaped + '%'.
 * Caller owns the result; NULL on allocation failure. */
static json_t *like_pattern(const json_t *v)
{
	struct buf b = BUF_INIT;
	char num[64];
	const char *s = "";
	size_t n = 0, i;
	bool wild = false;
	json_t *r = NULL;
	int rc = 0;

	if (json_is_string(v)) {
		s = json_string_value(v);
		n = json_string_length(v);
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		s = num;
		n = strlen(num);
	} else if (json_is_real(v)) {
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		s = num;
		n = strlen(num);
	}
	for (i = 0; i < n && !wild; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '%')
			wild = true;
	}
	if (wild)
		return json_stringn(s, n);
	rc = buf_putc(&b, '%');
	for (i = 0; !rc && i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			/* an escape the user wrote: keep the pair */
			rc = buf_add(&b, s + i, 2);
			i++;
		} else if (s[i] == '\\' || s[i] == '%' || s[i] == '_') {
			rc = buf_putc(&b, '\\');
			if (!rc)
				rc = buf_putc(&b, s[i]);
		} else {
			rc = buf_putc(&b, s[i]);
		}
	}
	if (!rc)
		rc = buf_putc(&b, '%');
	if (!rc)
		r = json_stringn(b.ptr, b.len);
	buf_release(&b);
	return r;
}

/* PocketBase's = / != : null, missing and "" are all equal, and != holds
 * for a null stored value. */
static void emit_equal(struct sqlout *o, bool eq, const struct term *l,
		       const struct term *r)
{
	const char *op = eq ? " = " : " IS NOT ";
	bool le = term_empty(l), re = term_empty(r);

	if (le && re) {
		so_puts(o, eq ? "'' = ''" : "'' IS NOT ''");
	} else if (term_known(l) || term_known(r)) {
		if (le)
			so_puts(o, "''");
		else
			so_term(o, l);
		so_puts(o, op);
		if (re)
			so_puts(o, "''");
		else
			so_term(o, r);
	} else if (le || re) {
		const struct term *x = le ? r : l;

		so_puts(o, "(");
		so_term(o, x);
		so_puts(o, op);
		so_puts(o, eq ? "'' OR " : "'' AND ");
		so_term(o, x);
		so_puts(o, eq ? " IS NULL)" : " IS NOT NULL)");
	} else {
		so_puts(o, "COALESCE(");
		so_term(o, l);
		so_puts(o, ", '')");
		so_puts(o, op);
		so_puts(o, "COALESCE(");
		so_term(o, r);
		so_puts(o, ", '')");
	}
}

static void emit_like(struct sqlout *o, bool neg, const struct term *l,
		      const struct term *r)
{
	so_term(o, l);
	so_puts(o, neg ? " NOT LIKE " : " LIKE ");
	if (r->value) {
		so_bind_new(o, like_pattern(r->value));
	} else {
		so_puts(o, "('%' || ");
		so_term(o, r);
		so_puts(o, " || '%')");
	}
	so_puts(o, " ESCAPE '\\'");
}

static int emit_node(struct emitter *em, const struct node *n,
		     struct sqlout *o);

/*
 * Join kids[lo..hi) of an AND/OR node as a balanced tree of parenthesised
 * pairs, so that SQLite's expression depth (limit 1000) grows with the log
 * of a long flat chain, not with its length.
 */
static int emit_kids(struct emitter *em, const struct node *n, size_t lo,
		     size_t hi, struct sqlout *o)
{
	size_t mid = lo + (hi - lo) / 2;
	int rc;

	if (hi - lo == 1)
		return emit_node(em, n->kids[lo], o);
	so_puts(o, "(");
	rc = emit_kids(em, n, lo, mid, o);
	so_puts(o, n->kind == N_AND ? " AND " : " OR ");
	if (!rc)
		rc = emit_kids(em, n, mid, hi, o);
	so_puts(o, ")");
	return rc ? rc : o->rc;
}

static int emit_node(struct emitter *em, const struct node *n,
		     struct sqlout *o)
{
	struct term l = { 0 }, r = { 0 };
	int rc = 0;

	if (n->kind != N_CMP)
		return emit_kids(em, n, 0, n->nkids, o);
	rc = resolve_operand(em, &n->lhs, &l);
	if (!rc)
		rc = resolve_operand(em, &n->rhs, &r);
	if (rc)
		goto out;
	switch (n->op) {
	case OP_EQ:
	case OP_NEQ:
		emit_equal(o, n->op == OP_EQ, &l, &r);
		break;
	case OP_LIKE:
	case OP_NLIKE:
		emit_like(o, n->op == OP_NLIKE, &l, &r);
		break;
	default:
		so_term(o, &l);
		so_puts(o, op_sql[n->op]);
		so_term(o, &r);
		break;
	}
	rc = o->rc;
out:
	json_decref(l.value);
	json_decref(r.value);
	if (!l.value)
		so_release(&l.x);
	if (!r.value)
		so_release(&r.x);
	return rc;
}

static bool blank(const char *s)
{
	while (is_space(*s))
		s++;
	return !*s;
}

int filter_compile(const struct schema *s, const struct collection *c,
		   const char *expr, const struct filter_auth *auth,
		   struct buf *sql, json_t *args, struct err *e)
{
	struct parser p = { 0 };
	struct emitter em = { 0 };
	struct node *root = NULL;
	struct sqlout o;
	struct err le = ERR_INIT;   /* our own, so a stale e->code never counts */
	size_t len, nargs;
	int rc;

	so_init(&o);
	if (o.rc) {
		rc = o.rc;
		goto out;
	}
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
		so_puts(&o, "1");
	} else if (blank(expr)) {
		rc = err_set_field(&le, ERR_INVALID, "filter",
				   "filter: empty expression");
		goto out;
	} else {
		p.src = expr;
		p.len = len;
		p.e = &le;
		rc = scan(&p);
		if (!rc)
			rc = parse_list(&p, 0, N_OR, &root);
		if (!rc && p.tok.kind != TOK_EOF)
			rc = unexpected(&p);
		if (rc)
			goto out;
		em.s = s;
		em.c = c;
		em.auth = auth;
		em.src = expr;
		em.e = &le;
		rc = emit_node(&em, root, &o);
		if (rc)
			goto out;
	}
	rc = o.rc;
	nargs = json_array_size(args);
	if (!rc && json_array_extend(args, o.args) < 0)
		rc = ERR_NOMEM;
	if (!rc)
		rc = buf_add(sql, o.sql.ptr, o.sql.len);
	/* on failure take back the binds so that sql and args stay in step */
	while (rc && json_array_size(args) > nargs)
		json_array_remove(args, json_array_size(args) - 1);
out:
	if (rc && le.code && e)
		*e = le;
	else if (rc)
		err_set_field(e, rc, "filter", "filter: %s", err_name(rc));
	node_free(root);
	so_release(&o);
	return rc;
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

bool filter_reads_record(const char *expr)
{
	struct parser p = { 0 };
	struct err le = ERR_INIT;
	struct node *root = NULL;
	bool reads = true;

	if (!expr || !*expr)
		return false;
	if (strlen(expr) > FILTER_MAX_LEN || blank(expr))
		return true;
	p.src = expr;
	p.len = strlen(expr);
	p.e = &le;
	if (scan(&p) == 0 && parse_list(&p, 0, N_OR, &root) == 0 &&
	    p.tok.kind == TOK_EOF)
		reads = node_reads_record(expr, root);
	node_free(root);
	return reads;
}

/* ---- sort --------------------------------------------------------------- */

int filter_sort_compile(const struct collection *c, const char *sort,
			const struct filter_auth *auth, struct buf *sql,
			struct err *e)
{
	struct sqlout o;
	struct emitter em = { .auth = auth };
	const struct field *f;
	const char *col, *dir;
	char shown[72], name[SORT_MAX_LEN + 1];
	size_t len, i = 0, start, end, nterms = 0, k;
	struct err le = ERR_INIT;
	bool has_id = false;
	int rc = 0;

	so_init(&o);
	if (!sort)
		sort = "";
	len = strlen(sort);
	if (len > SORT_MAX_LEN) {
		rc = err_set_field(&le, ERR_INVALID, "sort",
				   "sort: longer than %d bytes", SORT_MAX_LEN);
		goto out;
	}
	if (!len) {
		so_puts(&o, "records.created ASC, records.id ASC");
		goto done;
	}
	while (i <= len) {
		/* one term: [ws] [+|-] name [ws] (',' | end) */
		while (i < len && is_space(sort[i]))
			i++;
		start = i;
		dir = "ASC";
		if (i < len && (sort[i] == '-' || sort[i] == '+')) {
			dir = sort[i] == '-' ? "DESC" : "ASC";
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
		if (nterms > 1)
			so_puts(&o, ", ");
		if (!strcmp(name, "@random")) {
			so_puts(&o, "RANDOM()");
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
			so_printf(&o, "records.%s %s", col, dir);
		} else if (name_column(c, f)) {
			so_printf(&o, "records.name %s", dir);
		} else if (f->type == FT_BOOL || f->type == FT_NUMBER) {
			so_puts(&o, "COALESCE(");
			so_extract(&o, "records", f->name);
			so_printf(&o, ", 0) %s", dir);
		} else {
			so_extract(&o, "records", f->name);
			so_printf(&o, " %s", dir);
		}
	}
	if (!has_id)
		so_puts(&o, ", records.id ASC");
done:
	rc = o.rc;
	if (!rc)
		rc = buf_add(sql, o.sql.ptr, o.sql.len);
out:
	if (rc && le.code && e)
		*e = le;
	else if (rc)
		err_set_field(e, rc, "sort", "sort: %s", err_name(rc));
	so_release(&o);
	return rc;
}
