/*
 * fuzz_yaml.c - libFuzzer driver for the YAML reader and the manifest
 * loader: any input must give documents or a clear error, never a crash,
 * a leak or undefined behaviour. Every document that parses must also
 * survive yaml_emit() and read back equal, which checks the writer's
 * quoting against the reader's typing. The known pieces of manifest.h:
 * keyed but with nothing known, a load gives the same documents and
 * problems as without; with most pieces known (a fake find()), the
 * other pieces parsed one by one must not crash, leak or misplace.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Icontroller \
 *       tests/fuzz/fuzz_yaml.c controller/yamljson.c controller/manifest.c \
 *       controller/schema.c controller/embedded.c controller/err.c \
 *       controller/buf.c controller/util.c $(pkg-config --cflags --libs \
 *       jansson yaml-0.1) -o fuzz_yaml
 *   ./fuzz_yaml tests/fuzz/corpus/yaml
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct schema *schema;   /* loaded once, shared by all runs */

/* Emit v, read it back, and abort unless the result is the same value. */
static void round_trip(json_t *v)
{
	struct buf b = BUF_INIT;
	struct yaml_docs back = { NULL, 0 };
	struct err e = ERR_INIT;

	if (yaml_emit(&b, v, 0, &e)) {
		fprintf(stderr, "emit failed: %s\n", e.msg);
		abort();
	}
	if (yaml_parse_docs("emitted", b.ptr, b.len, &back, &e)) {
		fprintf(stderr, "emitted yaml does not parse: %s\n%s\n", e.msg,
			b.ptr);
		abort();
	}
	if (back.n != 1 || !back.docs[0].value ||
	    !json_equal(back.docs[0].value, v)) {
		fprintf(stderr, "round trip changed the value:\n%s\n", b.ptr);
		abort();
	}
	yaml_docs_release(&back);
	buf_release(&b);
}

static size_t nfound;

/* manifest_find_fn: most pieces known, each as a record of its own. */
static int fake_find(void *arg, const unsigned char key[MANIFEST_KEY_LEN],
		     struct manifest_doc *d, bool *hit, struct err *e)
{
	char name[32];

	(void)arg;
	(void)e;
	*hit = key[0] % 8 != 0;
	if (!*hit)
		return 0;
	snprintf(name, sizeof(name), "known-%zu", nfound++);
	d->coll = schema_find(schema, "ai_prompts");
	d->name = strdup(name);
	d->known_id = strdup("known0000000000");
	if (!d->coll || !d->name || !d->known_id)
		abort();
	return 0;
}

/* Abort unless a and b hold the same documents and problems. */
static void same_load(const struct manifest_set *a, const struct err_list *ea,
		      const struct manifest_set *b, const struct err_list *eb)
{
	size_t i;

	if (a->n != b->n || ea->total != eb->total || ea->n != eb->n)
		abort();
	for (i = 0; i < a->n; i++)
		if (a->docs[i].coll != b->docs[i].coll ||
		    strcmp(a->docs[i].name, b->docs[i].name) ||
		    a->docs[i].line != b->docs[i].line ||
		    a->docs[i].column != b->docs[i].column ||
		    !json_equal(a->docs[i].spec, b->docs[i].spec))
			abort();
	for (i = 0; i < ea->n; i++)
		if (strcmp(ea->v[i].err.msg, eb->v[i].err.msg))
			abort();
}

static void known_pieces(const uint8_t *data, size_t size)
{
	struct manifest_known k = { "salt", 4, true, fake_find, NULL };
	struct manifest_set plain = { NULL, 0, 0 }, keyed = { NULL, 0, 0 };
	struct err_list ep = ERR_LIST_INIT, ek = ERR_LIST_INIT;
	struct err e = ERR_INIT;
	size_t i, known = 0;
	int rc;

	rc = manifest_parse_all(schema, "f", (const char *)data, size, &plain,
				&ep, &e);
	if (rc != manifest_parse_known(schema, "f", (const char *)data, size,
				       &k, &keyed, &ek, &e))
		abort();
	if (rc)
		goto out;   /* memory, or the reader's own failure: both */
	same_load(&plain, &ep, &keyed, &ek);
	manifest_set_release(&keyed);
	err_list_release(&ek);
	k.none = false;
	nfound = 0;
	if (manifest_parse_known(schema, "f", (const char *)data, size, &k,
				 &keyed, &ek, &e))
		goto out;
	for (i = 0; i < keyed.n; i++) {
		const struct manifest_doc *d = &keyed.docs[i];

		if (d->known_id && (d->spec || !d->keyed || d->line < 1))
			abort();
		known += d->known_id != NULL;
	}
	if (known > nfound)
		abort();
out:
	manifest_set_release(&plain);
	manifest_set_release(&keyed);
	err_list_release(&ep);
	err_list_release(&ek);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_set m = { NULL, 0, 0 };
	struct yaml_docs d = { NULL, 0 };
	struct err e = ERR_INIT;
	size_t i;

	if (!schema && schema_load_default(&schema, &e)) {
		fprintf(stderr, "schema: %s\n", e.msg);
		abort();
	}
	if (manifest_parse(schema, "fuzz.yaml", (const char *)data, size, &m,
			   &e) && m.n != 0)
		abort();   /* an error must leave the set empty */
	manifest_set_release(&m);
	known_pieces(data, size);

	if (yaml_parse_docs("fuzz.yaml", (const char *)data, size, &d, &e))
		return 0;
	for (i = 0; i < d.n; i++)
		if (d.docs[i].value)
			round_trip(d.docs[i].value);
	yaml_docs_release(&d);
	return 0;
}
