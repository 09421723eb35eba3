/*
 * secrets.c - masking of secret fields (see secrets.h). The mask is an
 * HMAC-SHA256 over "pocketctl-mask-v1", the collection, the field and the
 * value's canonical JSON, NUL separated, keyed with the installation
 * secret: the prefix keeps it apart from the token-signing uses of the
 * same key (auth.c), the names make equal values in different fields
 * mask differently.
 */
#include "secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define MASK_DOMAIN "pocketctl-mask-v1"

int secrets_mask_value(const struct auth_keys *k, const char *collection,
		       const char *field, const json_t *value,
		       char out[sizeof(SECRETS_MASK_PREFIX) + SECRETS_MASK_HEX],
		       struct err *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *text = NULL;
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t n = 0;
	int i, rc = 0;

	out[0] = '\0';
	text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!text) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!ctx ||
	    !EVP_MAC_init(ctx, k->secret, sizeof(k->secret), params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)MASK_DOMAIN,
			    sizeof(MASK_DOMAIN)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)collection,
			    strlen(collection) + 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)field,
			    strlen(field) + 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)text, strlen(text)) ||
	    !EVP_MAC_final(ctx, md, &n, sizeof(md))) {
		rc = err_set(e, ERR_INTERNAL, "cannot compute the mask of '%s.%s'",
			     collection, field);
		goto out;
	}
	mdlen = (unsigned int)n;
	memcpy(out, SECRETS_MASK_PREFIX, sizeof(SECRETS_MASK_PREFIX) - 1);
	for (i = 0; i < SECRETS_MASK_HEX / 2 && (unsigned)i < mdlen; i++)
		snprintf(out + sizeof(SECRETS_MASK_PREFIX) - 1 + 2 * i, 3,
			 "%02x", md[i]);
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	if (text) {
		memset(text, 0, strlen(text));
		free(text);
	}
	return rc;
}

int secrets_mask(const struct auth_keys *k, const struct collection *c,
		 json_t *fields, struct err *e)
{
	char mask[sizeof(SECRETS_MASK_PREFIX) + SECRETS_MASK_HEX];
	const json_t *v;
	size_t i;
	int rc;

	if (!json_is_object(fields))
		return 0;
	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];

		if (!f->secret)
			continue;
		v = json_object_get(fields, f->name);
		if (!v || json_is_null(v))
			continue;
		rc = secrets_mask_value(k, c->name, f->name, v, mask, e);
		if (rc)
			return rc;
		/* json_string() copies mask; the new value is stolen. */
		if (json_object_set_new(fields, f->name, json_string(mask)))
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	return 0;
}

int secrets_mask_doc(const struct auth_keys *k, const struct collection *c,
		     json_t *doc, struct err *e)
{
	int rc = secrets_mask(k, c, json_object_get(doc, "data"), e);

	return rc ? rc : secrets_mask(k, c, json_object_get(doc, "spec"), e);
}

int secrets_mask_result(const struct auth_keys *k, const struct schema *s,
			json_t *result, struct err *e)
{
	const struct collection *c;
	json_t *item;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(result, "items"), i, item) {
		c = schema_find(s, json_string_value(
				     json_object_get(item, "collection")));
		if (!c)
			continue;
		rc = secrets_mask_doc(k, c, item, e);
		if (!rc)
			rc = secrets_mask_doc(k, c, json_object_get(item, "live"), e);
		if (!rc)
			rc = secrets_mask_doc(k, c,
					      json_object_get(item, "desired"), e);
		if (rc)
			break;
	}
	return rc;
}

/* Is v a mask (what secrets_mask() puts in place of a value)? */
static bool is_mask(const json_t *v)
{
	return json_is_string(v) &&
	       !strncmp(json_string_value(v), SECRETS_MASK_PREFIX,
			sizeof(SECRETS_MASK_PREFIX) - 1);
}

bool secrets_has_mask(const struct collection *c, const json_t *fields)
{
	size_t i;

	for (i = 0; json_is_object(fields) && i < c->nfields; i++)
		if (c->fields[i].secret &&
		    is_mask(json_object_get(fields, c->fields[i].name)))
			return true;
	return false;
}

int secrets_unmask(const struct auth_keys *k, const struct collection *c,
		   json_t *fields, const json_t *stored, struct err *e)
{
	char mask[sizeof(SECRETS_MASK_PREFIX) + SECRETS_MASK_HEX];
	const json_t *v, *old;
	size_t i;
	int rc;

	for (i = 0; json_is_object(fields) && i < c->nfields; i++) {
		const struct field *f = &c->fields[i];

		v = json_object_get(fields, f->name);
		if (!f->secret || !is_mask(v))
			continue;
		old = json_object_get(stored, f->name);
		if (!k)
			return err_set_field(e, ERR_INVALID, f->name,
					     "'%.40s' is a masked secret, and there is no key to check it against the stored value; give the value itself",
					     json_string_value(v));
		if (!old || json_is_null(old))
			return err_set_field(e, ERR_INVALID, f->name,
					     "'%.40s' is a masked secret, but no value is stored; give the value itself",
					     json_string_value(v));
		rc = secrets_mask_value(k, c->name, f->name, old, mask, e);
		if (rc)
			return rc;
		if (strcmp(mask, json_string_value(v)))
			return err_set_field(e, ERR_INVALID, f->name,
					     "'%.40s' is a masked secret that does not match the stored value (%s); give the value itself (get --show-secrets shows it)",
					     json_string_value(v), mask);
		if (json_object_set_new(fields, f->name, json_deep_copy(old)))
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	return 0;
}
