/*
 * fuzz_yaml.c - libFuzzer driver for the YAML reader and the manifest
 * loader: any input must give documents or a clear error, never a crash,
 * a leak or undefined behaviour. Every document that parses must also
 * survive yaml_emit() and read back equal, which checks the writer's
 * quoting against the reader's typing.
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

	if (yaml_parse_docs("fuzz.yaml", (const char *)data, size, &d, &e))
		return 0;
	for (i = 0; i < d.n; i++)
		if (d.docs[i].value)
			round_trip(d.docs[i].value);
	yaml_docs_release(&d);
	return 0;
}
