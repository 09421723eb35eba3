/*
 * test_yamljson_keys.c - where the key of a mapping's value stands
 * (yaml_doc_key_pos()), beside the value's own position: block and flow
 * mappings, values on the next lines, list items (no key), and keys too
 * far away to encode (the value's position instead).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "yamljson.h"

Test(yamljson_keys, key_and_value_positions)
{
	static const char text[] =
		"metadata: {name: x}\n"               /* 1 */
		"spec:\n"                             /* 2 */
		"  mode: fast\n"                      /* 3 */
		"  files:\n"                          /* 4 */
		"    - a\n"                           /* 5 */
		"  far:\n"                            /* 6 */
		"\n\n\n\n\n\n\n"                      /* 7-13 */
		"    deep: 1\n";                      /* 14 */
	static const struct {
		const char *path;
		int kline, kcol, vline, vcol;
	} want[] = {
		{ "metadata", 1, 1, 1, 11 },
		{ "metadata.name", 1, 12, 1, 18 },
		{ "spec", 2, 1, 3, 3 },
		{ "spec.mode", 3, 3, 3, 9 },
		{ "spec.files", 4, 3, 5, 5 },
		{ "spec.files.0", 5, 7, 5, 7 },     /* an item: no key */
		{ "spec.far", 14, 5, 14, 5 },       /* 8 lines up: unknown */
		{ "spec.far.deep", 14, 5, 14, 11 },
		{ "spec.nope", 0, 0, 0, 0 },
	};
	struct yaml_docs d;
	struct err e = ERR_INIT;
	int kl, kc, vl, vc;
	size_t i;

	cr_assert_eq(yaml_parse_docs("k.yaml", text, strlen(text), &d, &e), 0,
		     "%s", e.msg);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		yaml_doc_key_pos(&d.docs[0], want[i].path, &kl, &kc);
		yaml_doc_pos(&d.docs[0], want[i].path, &vl, &vc);
		cr_expect(kl == want[i].kline && kc == want[i].kcol,
			  "%s: key at %d:%d, want %d:%d", want[i].path, kl, kc,
			  want[i].kline, want[i].kcol);
		cr_expect(vl == want[i].vline && vc == want[i].vcol,
			  "%s: value at %d:%d, want %d:%d", want[i].path, vl,
			  vc, want[i].vline, want[i].vcol);
	}
	yaml_docs_release(&d);
}

Test(yamljson_keys, long_lines_and_far_columns)
{
	char text[6000];
	struct yaml_docs d;
	struct err e = ERR_INIT;
	int kl, kc;

	/* A key past column 4095 is not encoded: its value stands in. */
	snprintf(text, sizeof(text), "{%*s\"k\": 1, a: 2}\n", 4100, "");
	cr_assert_eq(yaml_parse_docs("w.yaml", text, strlen(text), &d, &e), 0,
		     "%s", e.msg);
	yaml_doc_key_pos(&d.docs[0], "k", &kl, &kc);
	cr_expect(kl == 1 && kc == 4102 + 5, "k at %d:%d", kl, kc);
	yaml_doc_key_pos(&d.docs[0], "a", &kl, &kc);
	cr_expect(kl == 1 && kc == 4113, "a at %d:%d", kl, kc);
	yaml_docs_release(&d);
}
