/*
 * pbjson.c - a stored record as PocketBase's record JSON, filtered for the
 * caller: hidden fields never leave, secret fields only to their owner or
 * an admin, auth emails as PocketBase shows them (see pbjson.h).
 */
#include "pbjson.h"

#include <string.h>

bool pb_viewer_is_admin(const struct http_auth *viewer)
{
	const char *role;

	if (!viewer)
		return false;
	if (viewer->kind == CALLER_SUPERUSER)
		return true;
	if (viewer->kind != CALLER_USER || !viewer->record)
		return false;
	role = json_string_value(json_object_get(viewer->record, "role"));
	return role && strcmp(role, "admin") == 0;
}

/* True when viewer owns r: r is the viewer's own auth record, or r's
 * owner field points at the viewer. */
static bool viewer_owns(const struct collection *c, const struct record *r,
			const struct http_auth *viewer)
{
	const char *owner;

	if (!viewer || viewer->kind == CALLER_GUEST || !viewer->id[0])
		return false;
	if (c->auth)
		return strcmp(r->id, viewer->id) == 0 &&
		       strcmp(c->id, viewer->collection_id) == 0;
	if (!c->owner_field)
		return false;
	owner = json_string_value(json_object_get(r->data, c->owner_field));
	return owner && strcmp(owner, viewer->id) == 0;
}

json_t *pb_record_json(const struct schema *s, const struct collection *c,
		       const struct record *r, const struct http_auth *viewer)
{
	bool privileged, email_visible;
	json_t *out, *v;
	size_t i;
	int rc = 0;

	(void)s;
	privileged = pb_viewer_is_admin(viewer) || viewer_owns(c, r, viewer);
	email_visible = privileged ||
		json_is_true(json_object_get(r->data, "emailVisibility"));
	out = json_object();
	if (!out)
		return NULL;
	/* json_string() copies; json_object_set_new steals the new value. */
	rc |= json_object_set_new(out, "id", json_string(r->id));
	rc |= json_object_set_new(out, "collectionId", json_string(c->id));
	rc |= json_object_set_new(out, "collectionName", json_string(c->name));
	rc |= json_object_set_new(out, "created", json_string(r->created));
	rc |= json_object_set_new(out, "updated", json_string(r->updated));
	for (i = 0; !rc && i < c->nfields; i++) {
		const struct field *f = &c->fields[i];

		if (f->hidden || f->type == FT_PASSWORD)
			continue;
		if (f->secret && !privileged)
			continue;
		if (c->auth && !strcmp(f->name, "email") && !email_visible)
			continue;
		v = json_object_get(r->data, f->name);   /* borrowed */
		if (!v)
			continue;
		rc = json_object_set(out, f->name, v);   /* adds a reference */
	}
	if (rc) {
		json_decref(out);
		return NULL;
	}
	return out;
}

bool pb_record_public(const struct collection *c)
{
	size_t i;

	if (c->auth)
		return false;
	for (i = 0; i < c->nfields; i++)
		if (c->fields[i].hidden || c->fields[i].secret ||
		    c->fields[i].type == FT_PASSWORD)
			return false;
	return true;
}

/* True when s needs no escaping inside a JSON string. */
static bool plain(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return false;
	return true;
}

int pb_row_text(struct buf *out, const struct collection *c,
		const struct store_row *row, struct err *e)
{
	int rc;

	if (!plain(row->id) || !plain(row->created) || !plain(row->updated))
		return err_set(e, ERR_DB,
			       "record '%s' of %s is corrupt in the database",
			       row->id, c->name);
	/* The keys and order of pb_record_json(), in plain appends: a
	 * printf per row was a third of a list request's instructions. */
	rc = buf_puts(out, "{\"id\":\"") || buf_puts(out, row->id) ||
	     buf_puts(out, "\",\"collectionId\":\"") || buf_puts(out, c->id) ||
	     buf_puts(out, "\",\"collectionName\":\"") ||
	     buf_puts(out, c->name) || buf_puts(out, "\",\"created\":\"") ||
	     buf_puts(out, row->created) ||
	     buf_puts(out, "\",\"updated\":\"") ||
	     buf_puts(out, row->updated) || buf_putc(out, '"');
	/* "{}" adds nothing; else ",<members>}" */
	if (!rc && row->data_len > 2)
		rc = buf_putc(out, ',') ||
		     buf_add(out, row->data + 1, row->data_len - 1);
	else if (!rc)
		rc = buf_putc(out, '}');
	return rc ? err_set(e, ERR_NOMEM, "out of memory") : 0;
}
