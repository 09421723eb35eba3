/*
 * store_text.c - the compact JSON text of the small values the store writes
 * on every put (labels, an empty status, field ownership): text identical
 * to json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), made by plain appends
 * when v is an object whose keys and string values need no escaping, by
 * jansson for everything else. A jansson dump of a two-member object was
 * about 8,000 instructions, a third of writing the ownership row.
 */
#include "store_int.h"

bool text_plain(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20)
			return false;
	return true;
}

/* Append v to b by plain appends: 1 when done, 0 when v is not a flat
 * object of plain strings (b left as it was), -1 on no memory. */
static int flat_text(struct buf *b, const json_t *v)
{
	const char *key;
	json_t *x;
	int bad = 0;

	if (!json_is_object(v))
		return 0;
	json_object_foreach((json_t *)v, key, x) {
		if (!json_is_string(x) || !text_plain(key, strlen(key)) ||
		    !text_plain(json_string_value(x), json_string_length(x)))
			return 0;
	}
	bad |= buf_putc(b, '{');
	json_object_foreach((json_t *)v, key, x) {
		bad |= buf_puts(b, "\"");
		bad |= buf_puts(b, key);
		bad |= buf_puts(b, "\":\"");
		bad |= buf_add(b, json_string_value(x), json_string_length(x));
		bad |= buf_puts(b, "\",");
	}
	if (!bad && json_object_size(v))
		b->ptr[--b->len] = '\0';       /* the last comma */
	bad |= buf_putc(b, '}');
	return bad ? -1 : 1;
}

int text_add(struct buf *b, const json_t *v)
{
	char *text;
	int rc;

	rc = flat_text(b, v);
	if (rc)
		return rc < 0 ? -1 : 0;
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return -1;
	rc = buf_puts(b, text);
	free(text);
	return rc;
}

char *text_of(const json_t *v)
{
	struct buf b;
	int rc;

	buf_init(&b, SIZE_MAX / 2);
	rc = flat_text(&b, v);
	if (rc <= 0) {
		buf_release(&b);
		return rc ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	}
	return buf_detach(&b, NULL);
}
