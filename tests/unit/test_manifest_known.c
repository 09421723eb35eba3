/*
 * test_manifest_known.c - known pieces (manifest.h, struct manifest_known):
 * each piece between "---" lines is keyed SHA-256(salt, piece); a piece
 * find() knows is not parsed; the pieces parsed alone give the documents,
 * lines, positions and problems of the whole file's parse; directives,
 * JSON and lists are parsed whole and not keyed.
 */
#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "testlib.h"

#define SALT "salt\n1"

#define DOC(kind, name, rest)                                            \
	"apiVersion: pocketcoder.dev/v1\nkind: " kind "\nmetadata:\n"     \
	"  name: " name "\n" rest

/* 12 pieces: 10 good documents, 2 with problems (pieces 4 and 7). */
static const char text[] =
	DOC("AiPrompt", "p1", "spec: {body: one}\n")          /* 1-5 */
	"--- # two\n"                                          /* 6 */
	DOC("AiPrompt", "p2", "spec:\n  body: two\n")          /* 7-12 */
	"---\n"                                                /* 13 */
	DOC("AiPrompt", "p3", "spec: {body: three}\n")         /* 14-18 */
	"---\n"                                                /* 19 */
	DOC("AiPrompt", "bad", "sepc: {}\n")                   /* 20-24 */
	"---\n"                                                /* 25 */
	DOC("AiModel", "m1", "spec: {identifier: a/b}\n")      /* 26-30 */
	"---\n"                                                /* 31 */
	DOC("AiModel", "m2", "spec: {identifier: a/c}\n")      /* 32-36 */
	"---\n"                                                /* 37 */
	"apiVersion: pocketcoder.dev/v1\nkind: AiModel\n"      /* 38-39 */
	"metadata: {name: [x]}\n"                              /* 40 */
	"---\n"                                                /* 41 */
	DOC("AiModel", "m3", "spec: {identifier: a/d}\n")      /* 42-46 */
	"---\n"                                                /* 47 */
	DOC("AiModel", "m4", "spec:\n  identifier: a/e\n")     /* 48-53 */
	"---\n"                                                /* 54 */
	DOC("AiModel", "m5", "spec: {identifier: a/f}\n")      /* 55-59 */
	"---\n"                                                /* 60 */
	DOC("AiModel", "m6", "spec: {identifier: a/g}\n")      /* 61-65 */
	"---\n"                                                /* 66 */
	DOC("AiModel", "m7", "spec: {identifier: a/h}\n");     /* 67-71 */

/* What find() knows: keys taken from a first load. */
struct fake {
	unsigned char keys[16][MANIFEST_KEY_LEN];
	char names[16][32];
	const struct collection *colls[16];
	size_t n, calls;
};

static int fake_find(void *arg, const unsigned char key[MANIFEST_KEY_LEN],
		     struct manifest_doc *d, bool *hit, struct err *e)
{
	struct fake *f = arg;
	size_t i;

	(void)e;
	f->calls++;
	*hit = false;
	for (i = 0; i < f->n; i++) {
		if (memcmp(f->keys[i], key, MANIFEST_KEY_LEN))
			continue;
		d->coll = f->colls[i];
		d->name = strdup(f->names[i]);
		d->known_id = strdup("known0000000000");
		*hit = true;
	}
	return 0;
}

static struct schema *sc;

static void setup_schema(void)
{
	sc = tl_schema();
}

static void free_schema(void)
{
	schema_free(sc);
	sc = NULL;
}

TestSuite(manifest_known, .init = setup_schema, .fini = free_schema);

static void load(const struct manifest_known *k, struct manifest_set *m,
		 struct err_list *l)
{
	struct err e = ERR_INIT;

	cr_assert_eq(manifest_parse_known(sc, "f.yaml", text,
					  strlen(text), k, m, l, &e), 0, "%s",
		     e.msg);
	err_list_sort(l);
}

static const struct manifest_doc *by_name(const struct manifest_set *m,
					  const char *name)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!strcmp(m->docs[i].name, name))
			return &m->docs[i];
	cr_assert_fail("no document %s", name);
	return NULL;
}

Test(manifest_known, key_is_the_salted_digest_of_the_piece)
{
	struct manifest_known k = { SALT, strlen(SALT), true, NULL, NULL };
	struct manifest_set m = { NULL, 0, 0 };
	struct err_list l = ERR_LIST_INIT;
	unsigned char want[MANIFEST_KEY_LEN];
	unsigned int n;
	const char *p2 = strstr(text, "--- # two"), *end = strstr(p2, "\n---\n");
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	cr_assert(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		  EVP_DigestUpdate(md, SALT, strlen(SALT)) &&
		  EVP_DigestUpdate(md, p2, (size_t)(end + 1 - p2)) &&
		  EVP_DigestFinal_ex(md, want, &n));
	EVP_MD_CTX_free(md);
	load(&k, &m, &l);
	cr_assert_eq(m.n, 10);
	cr_assert(by_name(&m, "p2")->keyed);
	cr_expect_eq(memcmp(by_name(&m, "p2")->key, want, sizeof(want)), 0);
	cr_expect_eq(by_name(&m, "p2")->line, 7);
	/* every document is its piece's only one */
	for (n = 0; n < m.n; n++)
		cr_expect(m.docs[n].keyed, "%s", m.docs[n].name);
	cr_expect_eq(l.total, 2);
	manifest_set_release(&m);
	err_list_release(&l);
}

Test(manifest_known, known_pieces_skipped_others_as_in_the_whole_file)
{
	static const char *const known[] = { "p1", "p2", "m1", "m2", "m3",
					     "m4", "m5", "m6", "m7" };
	struct manifest_known k = { SALT, strlen(SALT), true, NULL, NULL };
	struct manifest_set whole = { NULL, 0, 0 }, m = { NULL, 0, 0 };
	struct err_list lw = ERR_LIST_INIT, l = ERR_LIST_INIT;
	struct fake f;
	const struct manifest_doc *a, *b;
	int la, ca, lb, cb;
	size_t i;

	load(&k, &whole, &lw);
	memset(&f, 0, sizeof(f));
	for (i = 0; i < sizeof(known) / sizeof(*known); i++) {
		a = by_name(&whole, known[i]);
		memcpy(f.keys[f.n], a->key, MANIFEST_KEY_LEN);
		snprintf(f.names[f.n], sizeof(f.names[0]), "%s", a->name);
		f.colls[f.n++] = a->coll;
	}
	k.none = false;
	k.find = fake_find;
	k.arg = &f;
	load(&k, &m, &l);
	cr_expect_eq(f.calls, 12);
	cr_assert_eq(m.n, 10);
	/* the known ones are not parsed ... */
	for (i = 0; i < sizeof(known) / sizeof(*known); i++) {
		a = by_name(&m, known[i]);
		cr_expect_str_eq(a->known_id, "known0000000000");
		cr_expect_null(a->spec);
		cr_expect_str_eq(a->file, "f.yaml");
	}
	cr_expect_eq(by_name(&m, "m4")->line, 48);
	/* ... p3 is, alone, where it stands in the file */
	a = by_name(&whole, "p3");
	b = by_name(&m, "p3");
	cr_expect_null(b->known_id);
	cr_expect(b->keyed);
	cr_expect_eq(memcmp(a->key, b->key, MANIFEST_KEY_LEN), 0);
	cr_expect_eq(b->line, a->line);
	manifest_doc_locate(a, "body", false, &la, &ca);
	manifest_doc_locate(b, "body", false, &lb, &cb);
	cr_expect_eq(lb, 18);
	cr_expect_eq(la, lb);
	cr_expect_eq(ca, cb);
	/* the same problems, at the same places */
	cr_assert_eq(l.total, lw.total);
	for (i = 0; i < l.n; i++)
		cr_expect_str_eq(l.v[i].err.msg, lw.v[i].err.msg);
	cr_expect_str_eq(l.v[0].err.msg, "f.yaml:24:1: unknown key 'sepc' "
			 "(did you mean 'spec'?) (expected apiVersion, kind, "
			 "metadata and spec)");
	manifest_set_release(&whole);
	manifest_set_release(&m);
	err_list_release(&lw);
	err_list_release(&l);
}

Test(manifest_known, duplicate_of_a_known_piece_is_reported)
{
	static const char four[] =
		DOC("AiPrompt", "p1", "spec: {body: one}\n")
		"---\n"
		DOC("AiPrompt", "q1", "spec: {body: q}\n")
		"---\n"
		DOC("AiPrompt", "q2", "spec: {body: q}\n")
		"---\n"
		DOC("AiPrompt", "p1", "spec: {body: again}\n");
	struct manifest_known k = { SALT, strlen(SALT), true, NULL, NULL };
	struct manifest_set m = { NULL, 0, 0 };
	struct err_list l = ERR_LIST_INIT;
	struct err e = ERR_INIT;
	struct fake f;
	size_t i;

	/* the keys of the first three pieces: from a load of them alone */
	cr_assert_eq(manifest_parse_known(sc, "f.yaml", four,
					  strrchr(four, '-') - 2 - four, &k,
					  &m, &l, &e), 0);
	cr_assert_eq(m.n, 3);
	memset(&f, 0, sizeof(f));
	for (i = 0; i < 3; i++) {
		memcpy(f.keys[i], m.docs[i].key, MANIFEST_KEY_LEN);
		snprintf(f.names[i], sizeof(f.names[0]), "%s", m.docs[i].name);
		f.colls[i] = m.docs[i].coll;
	}
	f.n = 3;
	manifest_set_release(&m);
	k.none = false;
	k.find = fake_find;
	k.arg = &f;
	cr_assert_eq(manifest_parse_known(sc, "f.yaml", four, strlen(four),
					  &k, &m, &l, &e), 0);
	cr_assert_eq(m.n, 3);
	cr_expect_not_null(m.docs[0].known_id);
	cr_assert_eq(l.total, 1);
	cr_expect(strstr(l.v[0].err.msg, "duplicate AiPrompt 'p1' (first "
			 "defined at f.yaml:1:1)"), "%s", l.v[0].err.msg);
	manifest_set_release(&m);
	err_list_release(&l);
}

Test(manifest_known, directives_json_and_lists_are_not_keyed)
{
	static const char *const texts[] = {
		"%YAML 1.1\n---\n" DOC("AiPrompt", "p1", "spec: {body: x}\n"),
		"{\"apiVersion\": \"pocketcoder.dev/v1\", \"kind\": \"AiPrompt\", "
		"\"metadata\": {\"name\": \"p1\"}, \"spec\": {\"body\": \"x\"}}",
		"items:\n- {apiVersion: pocketcoder.dev/v1, kind: AiPrompt, "
		"metadata: {name: p1}, spec: {body: x}}\n",
	};
	struct manifest_known k = { SALT, strlen(SALT), true, NULL, NULL };
	struct err e = ERR_INIT;
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		struct manifest_set m = { NULL, 0, 0 };
		struct err_list l = ERR_LIST_INIT;

		cr_assert_eq(manifest_parse_known(sc, "f", texts[i],
						  strlen(texts[i]), &k, &m, &l,
						  &e), 0, "%s", e.msg);
		cr_assert_eq(m.n, 1, "text %zu", i);
		cr_expect_eq(l.total, 0, "text %zu", i);
		cr_expect(!m.docs[0].keyed, "text %zu", i);
		manifest_set_release(&m);
		err_list_release(&l);
	}
}
