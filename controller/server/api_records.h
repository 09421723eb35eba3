/*
 * api_records.h - PocketBase's records API for every collection of the
 * schema: list (page, perPage, sort, filter, fields, expand, skipTotal),
 * view, create, update, delete, with the collection's access rules applied
 * as PocketBase applies them, plus optimistic concurrency (If-Match / ETag
 * carrying the store revision).
 *
 * Routes (":c" is a collection name or id, ":id" a 15-character record id):
 *
 *   GET    /api/collections/:c/records       api_records_list
 *   POST   /api/collections/:c/records       api_records_create
 *   GET    /api/collections/:c/records/:id   api_records_view
 *   PATCH  /api/collections/:c/records/:id   api_records_update
 *   DELETE /api/collections/:c/records/:id   api_records_delete
 *
 * Status codes follow PocketBase: 403 "Only superusers can perform this
 * action." for a NULL rule, 404 for a record that is absent or hidden by the
 * rule, 400 for a create the create rule refuses, for validation errors
 * (with data.<field>) and for a delete the store refuses because of a
 * relation; beyond PocketBase, 412 when the record's fields changed since
 * the revision If-Match names (ETag = the record's revision; reconcile
 * status written by the server moves the revision but does not count as a
 * change), 413 for a body over the server's max_body, 403 naming the field
 * when a non-superuser writes a system field, 403 for collections written
 * only by the server (api_writable false).
 */
#ifndef POCKETCTL_API_RECORDS_H
#define POCKETCTL_API_RECORDS_H

#include "http.h"

int api_records_list(struct http_req *r);
int api_records_view(struct http_req *r);
int api_records_create(struct http_req *r);
int api_records_update(struct http_req *r);
int api_records_delete(struct http_req *r);

#endif
