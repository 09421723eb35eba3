/*
 * api_collections.h - collection metadata in PocketBase's shape, for
 * superusers: GET /api/collections (paged) and GET /api/collections/{name}
 * (by name or collection id), derived from the schema compiled into the
 * binary (schema/collections.json). Read only: the collections are code
 * here, so there is no create, update or delete.
 */
#ifndef POCKETCTL_API_COLLECTIONS_H
#define POCKETCTL_API_COLLECTIONS_H

#include "http.h"

/*
 * GET /api/collections?page=&perPage=&skipTotal=&fields=: 200
 * {page, perPage, totalItems, totalPages, items: [collection...]} in
 * schema order. 401 without a token, 403 for a caller who is not a
 * superuser; 400 naming the parameter for a bad page or perPage, and for
 * filter or sort, which this list does not support.
 */
int api_collections_list(struct http_req *r);

/*
 * GET /api/collections/{name}?fields=: 200 with one collection: id, name,
 * type ("base" or "auth"), system, the five rules (null = superusers
 * only), fields (the record id, the schema's fields and the created and
 * updated dates, each with its PocketBase type and options) and indexes
 * (as CREATE INDEX statements); auth collections add their auth options.
 * 401/403 as above; 404 for a collection that does not exist.
 */
int api_collections_view(struct http_req *r);

#endif
