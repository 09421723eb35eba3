/*
 * query.c - building and freeing the backend-neutral store query (see
 * query.h). Constructors take ownership of what they are given, also when
 * they fail, and pass a NULL argument on as a NULL result, so a caller can
 * nest them and check once; nothing here knows a query language.
 */
#include "query.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

const struct query_sort query_by_name = {
	2, { { QUERY_SORT_COLUMN, "name", false, false },
	     { QUERY_SORT_COLUMN, "id", false, false } }
};

struct query_val query_literal(json_t *v)
{
	struct query_val r;

	memset(&r, 0, sizeof(r));
	r.kind = QUERY_LITERAL;
	r.literal = v;
	return r;
}

struct query_val query_column(const char *name)
{
	struct query_val r;

	memset(&r, 0, sizeof(r));
	r.kind = QUERY_COLUMN;
	r.name = name;
	return r;
}

struct query_val query_field(const char *name, bool zero)
{
	struct query_val r;

	memset(&r, 0, sizeof(r));
	r.kind = QUERY_FIELD;
	r.name = name;
	r.zero = zero;
	return r;
}

void query_val_release(struct query_val *v)
{
	if (!v)
		return;
	json_decref(v->literal);
	json_decref(v->keys);
	memset(v, 0, sizeof(*v));
}

struct query_pred *query_pred_new(enum query_kind k)
{
	struct query_pred *p = calloc(1, sizeof(*p));

	if (p)
		p->kind = k;
	return p;
}

struct query_pred *query_cmp(enum query_op op, struct query_val lhs,
			     struct query_val rhs)
{
	struct query_pred *p = NULL;

	if ((lhs.kind != QUERY_LITERAL || lhs.literal) &&
	    (rhs.kind != QUERY_LITERAL || rhs.literal))
		p = query_pred_new(QUERY_CMP);
	if (!p) {
		query_val_release(&lhs);
		query_val_release(&rhs);
		return NULL;
	}
	p->op = op;
	p->lhs = lhs;
	p->rhs = rhs;
	return p;
}

int query_pred_add(struct query_pred *list, struct query_pred *kid)
{
	struct query_pred **k;
	size_t na;

	if (!kid)
		return ERR_NOMEM;
	if (list->nkids == list->alloc) {
		na = list->alloc ? list->alloc * 2 : 4;
		k = realloc(list->kids, na * sizeof(*k));
		if (!k) {
			query_pred_free(kid);
			return ERR_NOMEM;
		}
		list->kids = k;
		list->alloc = na;
	}
	list->kids[list->nkids++] = kid;
	return 0;
}

/* A node of kind k over a (and b when not NULL), taking ownership of
 * both; NULL when out of memory or when a (or a needed b) is NULL. */
static struct query_pred *pred_over(enum query_kind k, struct query_pred *a,
				    struct query_pred *b)
{
	struct query_pred *p = NULL;
	int rc;

	if (a && (b || k == QUERY_ON_RECORD))
		p = query_pred_new(k);
	if (!p) {
		query_pred_free(a);
		query_pred_free(b);
		return NULL;
	}
	rc = query_pred_add(p, a);          /* a is p's (or freed) now */
	if (b && rc)
		query_pred_free(b);
	else if (b)
		rc = query_pred_add(p, b);
	if (rc) {
		query_pred_free(p);
		return NULL;
	}
	return p;
}

struct query_pred *query_and(struct query_pred *a, struct query_pred *b)
{
	struct query_pred *p = pred_over(QUERY_AND, a, b);

	if (p)
		p->apart = true;
	return p;
}

struct query_pred *query_on_record(json_t *row, struct query_pred *kid)
{
	struct query_pred *p = row ? pred_over(QUERY_ON_RECORD, kid, NULL) :
				     NULL;

	if (!p) {
		if (!row)
			query_pred_free(kid);
		json_decref(row);
		return NULL;
	}
	p->row = row;
	return p;
}

void query_pred_free(struct query_pred *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nkids; i++)
		query_pred_free(p->kids[i]);
	free(p->kids);
	query_val_release(&p->lhs);
	query_val_release(&p->rhs);
	json_decref(p->row);
	free(p);
}

int query_sort_add(struct query_sort *s, enum query_sort_kind kind,
		   const char *name, bool zero, bool desc)
{
	struct query_sort_key *k;

	if (s->n >= QUERY_MAX_SORT)
		return ERR_TOO_LARGE;
	k = &s->keys[s->n++];
	k->kind = kind;
	k->name = name;
	k->zero = zero;
	k->desc = desc;
	return 0;
}
