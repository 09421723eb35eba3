/*
 * test_pick.c - the ?fields= projection (pick.c) and the ?expand= parser
 * (expand.c), table-driven: each row is a spec, an input document and the
 * exact JSON expected back.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/expand.h"
#include "server/pick.h"

struct pick_case {
	const char *spec;
	const char *in;
	const char *want;
};

static const char pick_doc[] =
	"{\"id\":\"abc\",\"title\":\"hello\",\"n\":3,"
	"\"parts\":[{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"tool\"}],"
	"\"expand\":{\"prompt\":{\"id\":\"p1\",\"name\":\"p\",\"body\":\"b\"},"
	"\"model\":{\"id\":\"m1\",\"name\":\"m\"}}}";

static const struct pick_case pick_cases[] = {
	{ "id", pick_doc, "{\"id\":\"abc\"}" },
	{ " id , title ", pick_doc, "{\"id\":\"abc\",\"title\":\"hello\"}" },
	{ "missing", pick_doc, "{}" },
	{ "expand.prompt.name", pick_doc,
	  "{\"expand\":{\"prompt\":{\"name\":\"p\"}}}" },
	{ "id,expand.model", pick_doc,
	  "{\"id\":\"abc\",\"expand\":{\"model\":{\"id\":\"m1\",\"name\":\"m\"}}}" },
	{ "*,expand.prompt.id", pick_doc,
	  "{\"id\":\"abc\",\"title\":\"hello\",\"n\":3,"
	  "\"parts\":[{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"tool\"}],"
	  "\"expand\":{\"prompt\":{\"id\":\"p1\"}}}" },
	/* like PocketBase, "*" is only a whole path segment at the end */
	{ "expand.*.id", pick_doc, "{\"expand\":{}}" },
	{ "expand.prompt.*", pick_doc,
	  "{\"expand\":{\"prompt\":{\"id\":\"p1\",\"name\":\"p\",\"body\":\"b\"}}}" },
	{ "parts.type", pick_doc,
	  "{\"parts\":[{\"type\":\"text\"},{\"type\":\"tool\"}]}" },
	{ "title:excerpt(3)", pick_doc, "{\"title\":\"hel\"}" },
	{ "title:excerpt(3,true)", pick_doc, "{\"title\":\"hel...\"}" },
	{ "title:excerpt(10,true)", pick_doc, "{\"title\":\"hello\"}" },
	{ "n:excerpt(1)", pick_doc, "{\"n\":3}" },
	{ "t:excerpt(5)", "{\"t\":\"  a   b\\n\\n c  \"}", "{\"t\":\"a b c\"}" },
	/* multi-byte: never cut inside a character */
	{ "t:excerpt(2)", "{\"t\":\"a\\u00e9b\"}", "{\"t\":\"a\"}" },
	{ "", pick_doc, NULL },        /* no projection */
	{ " , ", pick_doc, NULL },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The JSON text of v, for failure messages (a static buffer: tests run
 * one at a time in their own process). */
static const char *pick_show(const json_t *v)
{
	static char out[1024];
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	snprintf(out, sizeof(out), "%s", s ? s : "(null)");
	free(s);
	return out;
}

static void pick_check(const struct pick_case *tc)
{
	struct err e = ERR_INIT;
	struct pick *p = NULL;
	json_t *in, *want;

	cr_assert_eq(pick_parse(tc->spec, &p, &e), 0, "%s: %s", tc->spec,
		     e.msg);
	in = json_loads(tc->in, 0, NULL);
	cr_assert_not_null(in);
	if (!tc->want) {
		cr_assert_null(p, "'%s' should mean no projection", tc->spec);
		want = json_loads(tc->in, 0, NULL);
	} else {
		cr_assert_not_null(p);
		want = json_loads(tc->want, 0, NULL);
	}
	cr_assert_eq(pick_apply(p, in), 0);
	cr_assert(json_equal(in, want), "'%s' gave %s", tc->spec,
		  pick_show(in));
	json_decref(in);
	json_decref(want);
	pick_free(p);
}

Test(pick, table)
{
	size_t i;

	for (i = 0; i < NELEM(pick_cases); i++)
		pick_check(&pick_cases[i]);
}

static const char *const pick_bad[] = {
	"title:nope(3)", "title:excerpt", "title:excerpt()",
	"title:excerpt(0)", "title:excerpt(-4)", "title:excerpt(x)",
	"title:excerpt(1,2,3)", "a:excerpt(3", "a)", "a:",
	":excerpt(3)",
};

Test(pick, refused)
{
	struct err e = ERR_INIT;
	struct pick *p = NULL;
	size_t i;

	for (i = 0; i < NELEM(pick_bad); i++) {
		err_clear(&e);
		cr_assert_eq(pick_parse(pick_bad[i], &p, &e), ERR_INVALID,
			     "'%s' accepted", pick_bad[i]);
		cr_assert_null(p);
		cr_assert_str_eq(e.field, "fields");
		cr_assert(strstr(e.msg, "fields:") == e.msg, "%s", e.msg);
	}
}

Test(pick, limits)
{
	struct err e = ERR_INIT;
	struct pick *p = NULL;
	char big[PICK_MAX_LEN + 8];
	char many[PICK_MAX_FIELDS * 3 + 8];
	size_t i;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(pick_parse(big, &p, &e), ERR_INVALID);
	many[0] = '\0';
	for (i = 0; i <= PICK_MAX_FIELDS; i++)
		strcat(many, "a,");
	cr_assert_eq(pick_parse(many, &p, &e), ERR_INVALID);
	cr_assert(strstr(e.msg, "entries"), "%s", e.msg);
	cr_assert_null(p);
	pick_apply(NULL, NULL);   /* NULL projection is a no-op */
	pick_free(NULL);
}

struct expand_case {
	const char *spec;
	const char *want;
};

static const struct expand_case expand_cases[] = {
	{ "", "{}" },
	{ "prompt", "{\"prompt\":{}}" },
	{ "prompt, model", "{\"prompt\":{},\"model\":{}}" },
	{ "chat.user,chat", "{\"chat\":{\"user\":{}}}" },
	{ "a..b,,c.", "{}" },
	{ "a.b.c.d.e.f.g.h",
	  "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{}}}}}}}" },
};

Test(expand, parse)
{
	struct err e = ERR_INIT;
	json_t *tree, *want;
	size_t i;

	for (i = 0; i < NELEM(expand_cases); i++) {
		tree = NULL;
		want = json_loads(expand_cases[i].want, 0, NULL);
		cr_assert_not_null(want);
		cr_assert_eq(expand_parse(expand_cases[i].spec, &tree, &e), 0,
			     "%s", e.msg);
		cr_assert(json_equal(tree, want), "'%s' gave %s",
			  expand_cases[i].spec, pick_show(tree));
		json_decref(tree);
		json_decref(want);
	}
}

Test(expand, limits)
{
	struct err e = ERR_INIT;
	char many[EXPAND_MAX_PATHS * 3 + 8];
	json_t *tree = NULL;
	size_t i;

	many[0] = '\0';
	for (i = 0; i <= EXPAND_MAX_PATHS; i++)
		strcat(many, "a,");
	cr_assert_eq(expand_parse(many, &tree, &e), ERR_INVALID);
	cr_assert_str_eq(e.field, "expand");
	cr_assert_null(tree);
	cr_assert_eq(expand_parse(NULL, &tree, &e), 0);
	cr_assert_eq(json_object_size(tree), 0);
	json_decref(tree);
}
