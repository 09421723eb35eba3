/*
 * fuzz_select.c - libFuzzer driver for the two parsers of `pocketctl get`'s
 * selection: label selectors (selector.c) and -o jsonpath templates
 * (cli/jsonpath.c). Any input must parse or give a one-line ERR_INVALID
 * naming a position, never crash, leak or hit undefined behaviour; what
 * parses must match / run against a small document.
 *
 * The first input byte picks the parser (even: selector, odd: jsonpath);
 * the rest, up to the first NUL, is the text.
 *
 *   make fuzz
 *   build/fuzz/fuzz_select tests/fuzz/corpus/select
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli/jsonpath.h"
#include "selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char doc_text[] =
	"{\"kind\":\"List\",\"items\":[{\"metadata\":{\"name\":\"a\","
	"\"labels\":{\"team\":\"core\"}},\"spec\":{\"n\":1,\"l\":[1,[2,3]]}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	struct selector *s = NULL;
	struct jsonpath *jp = NULL;
	struct buf out;
	json_t *doc;
	char *text;
	int rc;

	if (size < 1)
		return 0;
	text = strndup((const char *)data + 1, size - 1);
	if (!text)
		return 0;
	doc = json_loads(doc_text, 0, NULL);
	if (data[0] % 2 == 0) {
		rc = selector_parse(text, &s, &e);
		if (rc && (rc != ERR_INVALID || s || strchr(e.msg, '\n')))
			abort();
		if (!rc)
			(void)selector_match(s, json_object_get(json_object_get(
				json_array_get(json_object_get(doc, "items"), 0),
				"metadata"), "labels"));
		selector_free(s);
	} else {
		rc = jsonpath_compile(text, &jp, &e);
		if (rc && (rc != ERR_INVALID || jp || strchr(e.msg, '\n')))
			abort();
		if (!rc) {
			buf_init(&out, (size_t)1 << 20);
			(void)jsonpath_execute(jp, doc, &out, &e);
			buf_release(&out);
		}
		jsonpath_free(jp);
	}
	json_decref(doc);
	free(text);
	return 0;
}
