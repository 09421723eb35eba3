/*
 * test_render.c - golden-file and property tests for the renderers of
 * reconcilers/render.h.
 *
 * Golden layout (paths relative to the repository root, where `make test`
 * runs): tests/golden/render/<renderer>/<case>.in.json holds the inputs
 * (the renderer's record arrays by parameter name; opencode_json may name
 * an "existing" file beside it); <case>.golden.<ext> is the exact expected
 * file, <case>.golden.warnings the warnings (one per line) and
 * <case>.golden.error the error message of a refused render. Run with
 * UPDATE_GOLDEN=1 to rewrite the golden files from the current renderers,
 * then review the diff.
 *
 * Every case is also rendered from shuffled inputs (same bytes, same
 * warnings), and opencode.json from its own output (a fixed point).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "render.h"
#include "testlib.h"

#define GOLDEN_DIR "tests/golden/render"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

struct rendered {
	struct buf out[2];          /* main output; mcp.env for docker_mcp */
	json_t *warnings;
	int rc;
	struct err e;
};

static void rendered_init(struct rendered *r)
{
	buf_init(&r->out[0], 0);
	buf_init(&r->out[1], 0);
	r->warnings = json_array();
	r->rc = 0;
	err_clear(&r->e);
}

static void rendered_release(struct rendered *r)
{
	buf_release(&r->out[0]);
	buf_release(&r->out[1]);
	json_decref(r->warnings);
	r->warnings = NULL;
}

/* The warnings as one string, one per line. Caller frees. */
static char *warnings_text(json_t *w)
{
	struct buf b = BUF_INIT;
	json_t *s;
	size_t i;

	json_array_foreach(w, i, s) {
		buf_puts(&b, json_string_value(s));
		buf_putc(&b, '\n');
	}
	return buf_detach(&b, NULL);
}

static bool update_golden(void)
{
	const char *v = getenv("UPDATE_GOLDEN");

	return v && !strcmp(v, "1");
}

static char *slurp(const char *path, size_t *len)
{
	struct buf b = BUF_INIT;
	struct err e = ERR_INIT;

	if (buf_read_file(&b, path, &e)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, len);
}

static void spit(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f, "cannot write '%s': %s", path, strerror(errno));
	cr_assert(fwrite(data, 1, len, f) == len);
	cr_assert(fclose(f) == 0);
}

/* Compare data with the golden file (or rewrite it under UPDATE_GOLDEN). */
static void golden(const char *path, const char *data, size_t len)
{
	size_t elen = 0, i;
	char *exp;

	if (update_golden()) {
		spit(path, data, len);
		return;
	}
	exp = slurp(path, &elen);
	cr_assert(exp, "golden file '%s' is missing (UPDATE_GOLDEN=1 "
		  "creates it)", path);
	for (i = 0; i < len && i < elen && data[i] == exp[i]; i++)
		;
	cr_expect(len == elen && i == len,
		  "'%s' differs from the rendered output at byte %zu "
		  "(golden %zu bytes, rendered %zu); UPDATE_GOLDEN=1 "
		  "rewrites it\n--- rendered ---\n%.*s", path, i, elen, len,
		  (int)len, data);
	free(exp);
}

static json_t *load_json(const char *path)
{
	json_error_t je;
	json_t *v = json_load_file(path, 0, &je);

	cr_assert(v, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	return v;
}

/* A copy of in whose top-level arrays are permuted with seed. */
static json_t *shuffled(json_t *in, unsigned seed)
{
	json_t *copy = json_deep_copy(in), *arr, **v;
	unsigned long long x = seed * 2654435761ULL + 12345;
	const char *key;
	size_t n, i, j;

	json_object_foreach(copy, key, arr) {
		if (!json_is_array(arr) || json_array_size(arr) < 2)
			continue;
		n = json_array_size(arr);
		v = calloc(n, sizeof(*v));
		cr_assert(v);
		for (i = 0; i < n; i++)
			v[i] = json_incref(json_array_get(arr, i));
		for (i = n - 1; i > 0; i--) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			j = (size_t)((x >> 33) % (i + 1));
			json_t *t = v[i];
			v[i] = v[j];
			v[j] = t;
		}
		json_array_clear(arr);
		for (i = 0; i < n; i++)
			json_array_append_new(arr, v[i]);
		free(v);
	}
	return copy;
}

/* ------------------------------------------------------------------ */
/* One adapter per renderer: inputs by name -> struct rendered.        */

typedef void (*render_fn)(json_t *in, const char *dir, struct rendered *r);

static void run_llm_env(json_t *in, const char *dir, struct rendered *r)
{
	(void)dir;
	r->rc = render_llm_env(json_object_get(in, "llm_keys"), &r->out[0],
			       r->warnings, &r->e);
}

static char *existing_of(json_t *in, const char *dir, size_t *len)
{
	const char *name = json_string_value(json_object_get(in, "existing"));
	char path[512];
	char *text;

	*len = 0;
	if (!name)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	text = slurp(path, len);
	cr_assert(text, "cannot read '%s'", path);
	return text;
}

static void run_opencode_json(json_t *in, const char *dir, struct rendered *r)
{
	size_t len;
	char *existing = existing_of(in, dir, &len);

	r->rc = render_opencode_json(existing, len,
				     json_object_get(in, "tool_permissions"),
				     json_object_get(in, "agents"),
				     json_object_get(in, "prompts"),
				     json_object_get(in, "models"), &r->out[0],
				     r->warnings, &r->e);
	free(existing);
}

static void run_docker_mcp(json_t *in, const char *dir, struct rendered *r)
{
	(void)dir;
	r->rc = render_docker_mcp(json_object_get(in, "mcp_servers"),
				  &r->out[0], &r->out[1], r->warnings, &r->e);
}

static void run_agent_bundle(json_t *in, const char *dir, struct rendered *r)
{
	(void)dir;
	r->rc = render_agent_bundle(json_object_get(in, "agent"),
				    json_object_get(in, "prompts"),
				    json_object_get(in, "models"), &r->out[0],
				    &r->e);
}

static void run_authorized_keys(json_t *in, const char *dir,
				struct rendered *r)
{
	(void)dir;
	r->rc = render_authorized_keys(
		json_object_get(in, "ssh_keys"),
		json_string_value(json_object_get(in, "now")), &r->out[0],
		r->warnings, &r->e);
}

struct renderer {
	const char *dir;
	render_fn fn;
	const char *ext[2];   /* golden extensions of out[0], out[1] */
};

static const struct renderer renderers[] = {
	{ "llm_env", run_llm_env, { "env", NULL } },
	{ "opencode_json", run_opencode_json, { "json", NULL } },
	{ "docker_mcp", run_docker_mcp, { "yaml", "env" } },
	{ "agent_bundle", run_agent_bundle, { "md", NULL } },
	{ "authorized_keys", run_authorized_keys, { "keys", NULL } },
};

static const struct renderer *renderer_named(const char *dir)
{
	size_t i;

	for (i = 0; i < sizeof(renderers) / sizeof(renderers[0]); i++)
		if (!strcmp(renderers[i].dir, dir))
			return &renderers[i];
	cr_assert_fail("no renderer '%s'", dir);
	return NULL;
}

/*
 * Render one case and check it against its golden files, then check that
 * five shuffles of the inputs give the same bytes and warnings. Returns
 * the input (caller decrefs) and leaves the first rendering in *r.
 */
static json_t *golden_case(const char *rdir, const char *name,
			   struct rendered *r)
{
	const struct renderer *rd = renderer_named(rdir);
	char dir[256], path[512];
	struct rendered s;
	char *w0, *w1;
	json_t *in, *sh;
	unsigned seed;
	int k;

	snprintf(dir, sizeof(dir), "%s/%s", GOLDEN_DIR, rdir);
	snprintf(path, sizeof(path), "%s/%s.in.json", dir, name);
	in = load_json(path);
	rendered_init(r);
	rd->fn(in, dir, r);
	if (r->rc) {
		struct buf msg = BUF_INIT;

		buf_printf(&msg, "%s\n", r->e.msg);
		snprintf(path, sizeof(path), "%s/%s.golden.error", dir, name);
		golden(path, msg.ptr, msg.len);
		buf_release(&msg);
		cr_expect(r->out[0].len == 0,
			  "%s/%s: a refused render wrote output", rdir, name);
	} else {
		for (k = 0; k < 2; k++) {
			if (!rd->ext[k])
				continue;
			snprintf(path, sizeof(path), "%s/%s.golden.%s", dir,
				 name, rd->ext[k]);
			golden(path, r->out[k].ptr, r->out[k].len);
		}
	}
	w0 = warnings_text(r->warnings);
	snprintf(path, sizeof(path), "%s/%s.golden.warnings", dir, name);
	golden(path, w0, strlen(w0));

	for (seed = 1; seed <= 5; seed++) {
		sh = shuffled(in, seed);
		rendered_init(&s);
		rd->fn(sh, dir, &s);
		w1 = warnings_text(s.warnings);
		cr_expect_eq(s.rc, r->rc, "%s/%s shuffle %u: rc %d != %d", rdir,
			     name, seed, s.rc, r->rc);
		for (k = 0; k < 2; k++)
			cr_expect(s.out[k].len == r->out[k].len &&
					  !memcmp(s.out[k].ptr, r->out[k].ptr,
						  r->out[k].len),
				  "%s/%s shuffle %u: output %d depends on input "
				  "order", rdir, name, seed, k);
		cr_expect_str_eq(w1, w0, "%s/%s shuffle %u: warnings depend "
				 "on input order", rdir, name, seed);
		free(w1);
		rendered_release(&s);
		json_decref(sh);
	}
	free(w0);
	return in;
}

static void golden_cases(const char *rdir, const char *const *names)
{
	struct rendered r;
	json_t *in;

	for (; *names; names++) {
		in = golden_case(rdir, *names, &r);
		rendered_release(&r);
		json_decref(in);
	}
}

/* ------------------------------------------------------------------ */
/* llm.env                                                             */

Test(render_llm_env, golden)
{
	static const char *const cases[] = {
		"seeded", "awkward", "duplicates", "invalid_names", "empty",
		"reserved_names",
		"many", NULL,
	};

	golden_cases("llm_env", cases);
}

Test(render_llm_env, duplicate_key_latest_updated_wins)
{
	struct rendered r;
	json_t *in = golden_case("llm_env", "duplicates", &r);

	cr_assert_eq(r.rc, 0);
	/* bob (12:03) beats carol (12:02) and alice (12:01). */
	cr_expect(strstr(r.out[0].ptr, "\nOPENAI_API_KEY='sk-bob'\n"));
	/* dave and erin share updated: the greater id (erin) wins. */
	cr_expect(strstr(r.out[0].ptr, "\nSHARED='from-erin'\n"));
	cr_expect(!strstr(r.out[0].ptr, "sk-alice"));
	cr_expect_eq(json_array_size(r.warnings), 2);
	cr_expect_str_eq(json_string_value(json_array_get(r.warnings, 0)),
			 "key 'OPENAI_API_KEY' defined by llm_keys "
			 "'alice-openai', 'carol-openai' and 'bob-openai'; "
			 "'bob-openai' wins (latest updated)");
	rendered_release(&r);
	json_decref(in);
}

Test(render_llm_env, header_has_no_timestamp_and_empty_set_is_header_only)
{
	struct rendered r;
	json_t *in = golden_case("llm_env", "empty", &r);
	const char *p;

	cr_assert_eq(r.rc, 0);
	for (p = r.out[0].ptr; *p; p = strchr(p, '\n') + 1)
		cr_expect(*p == '#', "non-comment line in an empty llm.env");
	cr_expect(!strstr(r.out[0].ptr, "2026"));
	rendered_release(&r);
	json_decref(in);
}

struct sh_case {
	const char *key;
	json_t *value;        /* as stored */
	const char *expect;   /* what the shell must print */
};

/* Run cmd with popen and return everything it printed (caller frees). */
static char *run_capture(const char *cmd, size_t *len, int *status)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	FILE *p = popen(cmd, "r");

	cr_assert(p, "popen: %s", strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_add(&b, chunk, n);
	*status = pclose(p);
	return buf_detach(&b, len);
}

Test(render_llm_env, sourced_by_sh_gives_exact_values_and_no_injection)
{
	struct sh_case cases[] = {
		{ "A_PLAIN", json_string("plain"), "plain" },
		{ "B_SPACES", json_string("with spaces  and\ttab "),
		  "with spaces  and\ttab " },
		{ "C_SQUOTE", json_string("it's a 'quoted' value"),
		  "it's a 'quoted' value" },
		{ "D_QUOTES", json_string("'''"), "'''" },
		{ "E_DQUOTE", json_string("say \"hi\""), "say \"hi\"" },
		{ "F_DOLLAR", json_string("$HOME ${PATH} $(touch pwned) "
					  "`touch pwned2` $$"),
		  "$HOME ${PATH} $(touch pwned) `touch pwned2` $$" },
		{ "G_BACKSLASH", json_string("back\\slash\\ \\n \\' end\\"),
		  "back\\slash\\ \\n \\' end\\" },
		{ "H_UNICODE", json_string("h\xc3\xa9llo \xe2\x9c\x93 "
					   "\xf0\x9f\x9a\x80"),
		  "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x9a\x80" },
		{ "I_NEWLINE", json_string("line1\nINJECTED=1\nexport "
					   "INJECTED2=2\nline4"),
		  "line1\nINJECTED=1\nexport INJECTED2=2\nline4" },
		{ "J_TRAILING_NL", json_string("ends\n\n"), "ends\n\n" },
		{ "K_EMPTY", json_string(""), "" },
		{ "L_OPTS", json_string("-n"), "-n" },
		{ "M_GLOB", json_string("* ? [a] ~"), "* ? [a] ~" },
		{ "N_META", json_string("a;b&&c|d>e<f #c"), "a;b&&c|d>e<f #c" },
		{ "O_CRLF", json_string("crlf\r\n"), "crlf\r\n" },
		{ "P_INT", json_integer(42), "42" },
		{ "Q_REAL", json_real(1e6), "1000000.0" },
		{ "R_TRUE", json_true(), "true" },
		{ "S_NULL", json_null(), "" },
		{ "T_OBJECT", json_pack("{s:[i,s]}", "a", 1, "it's"),
		  "{\"a\":[1,\"it's\"]}" },
		{ "lower_Case9", json_string("x"), "x" },
	};
	size_t n = sizeof(cases) / sizeof(cases[0]), i, len, off;
	json_t *vars = json_object(), *keys;
	struct rendered r;
	char path[512], cmd[1024], *dir, *got;
	int status;

	for (i = 0; i < n; i++)
		json_object_set_new(vars, cases[i].key, cases[i].value);
	keys = json_pack("[{s:s, s:s, s:o}]", "id", "shtest000000001",
			 "name", "shtest", "data",
			 json_pack("{s:o}", "env_vars", vars));
	rendered_init(&r);
	r.rc = render_llm_env(keys, &r.out[0], r.warnings, &r.e);
	cr_assert_eq(r.rc, 0, "%s", r.e.msg);
	cr_assert_eq(json_array_size(r.warnings), 0);

	dir = tl_tmpdir("render");
	snprintf(path, sizeof(path), "%s/llm.env", dir);
	spit(path, r.out[0].ptr, r.out[0].len);

	for (i = 0; i < n; i++) {
		snprintf(cmd, sizeof(cmd),
			 "cd '%s' && /bin/sh -c '. ./llm.env && printf %%s "
			 "\"$%s\"'", dir, cases[i].key);
		got = run_capture(cmd, &len, &status);
		cr_expect_eq(status, 0, "%s: sh exited with %d", cases[i].key,
			     status);
		cr_expect(len == strlen(cases[i].expect) &&
				  !memcmp(got, cases[i].expect, len),
			  "%s: sh printed [%.*s], expected [%s]", cases[i].key,
			  (int)len, got, cases[i].expect);
		free(got);
	}

	/* Export everything the file sets and list the environment: only
	 * our keys (and what sh itself sets) may appear. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && env -i /bin/sh -c 'set -a; . ./llm.env; set +a; "
		 "exec env -0'", dir);
	got = run_capture(cmd, &len, &status);
	cr_assert_eq(status, 0);
	{
		size_t found = 0;

		for (off = 0; off < len; off += strlen(got + off) + 1) {
			const char *var = got + off, *eq = strchr(var, '=');
			size_t nl = eq ? (size_t)(eq - var) : strlen(var);
			bool ok = false;

			for (i = 0; i < n && !ok; i++)
				ok = strlen(cases[i].key) == nl &&
				     !strncmp(var, cases[i].key, nl);
			if (ok) {
				found++;
				continue;
			}
			cr_expect((nl == 3 && !strncmp(var, "PWD", 3)) ||
					  (nl == 5 && !strncmp(var, "SHLVL", 5)) ||
					  (nl == 1 && var[0] == '_') ||
					  (nl == 6 && !strncmp(var, "OLDPWD", 6)),
				  "unexpected variable in the environment: "
				  "%.*s", (int)nl, var);
		}
		cr_expect_eq(found, n, "%zu of %zu variables exported", found,
			     n);
	}
	free(got);
	snprintf(path, sizeof(path), "%s/pwned", dir);
	cr_expect(access(path, F_OK) != 0, "command substitution ran");
	snprintf(path, sizeof(path), "%s/pwned2", dir);
	cr_expect(access(path, F_OK) != 0, "backquote substitution ran");

	tl_unlink_in(dir, "pwned");
	tl_unlink_in(dir, "pwned2");
	tl_unlink_in(dir, "llm.env");
	rmdir(dir);
	free(dir);
	rendered_release(&r);
	json_decref(keys);
}

Test(render_llm_env, nul_byte_value_is_skipped_with_warning)
{
	json_t *keys = json_pack("[{s:s, s:{s:{s:s%, s:s}}}]", "id",
				 "nul000000000001", "data", "env_vars", "BAD",
				 "a\0b", (size_t)3, "GOOD", "ok");
	struct rendered r;

	rendered_init(&r);
	r.rc = render_llm_env(keys, &r.out[0], r.warnings, &r.e);
	cr_assert_eq(r.rc, 0);
	cr_expect(strstr(r.out[0].ptr, "\nGOOD='ok'\n"));
	cr_expect(!strstr(r.out[0].ptr, "BAD="));
	cr_expect_eq(json_array_size(r.warnings), 1);
	cr_expect(strstr(json_string_value(json_array_get(r.warnings, 0)),
			 "NUL"));
	rendered_release(&r);
	json_decref(keys);
}

Test(render_llm_env, bad_input_and_cap)
{
	struct buf out;
	struct err e = ERR_INIT;
	json_t *notarr = json_object(), *keys;

	buf_init(&out, 0);
	buf_puts(&out, "keep");
	cr_expect_eq(render_llm_env(notarr, &out, NULL, &e), ERR_INVALID);
	cr_expect_str_eq(out.ptr, "keep");
	cr_expect(strstr(e.msg, "llm_keys"));
	cr_expect_eq(render_llm_env(NULL, &out, NULL, &e), 0);
	buf_release(&out);

	keys = json_pack("[{s:s, s:{s:{s:s}}}]", "id", "cap000000000001",
			 "data", "env_vars", "K", "0123456789");
	buf_init(&out, 20);
	buf_puts(&out, "keep");
	cr_expect_eq(render_llm_env(keys, &out, NULL, &e), ERR_TOO_LARGE);
	cr_expect_str_eq(out.ptr, "keep", "out changed on error");
	buf_release(&out);
	json_decref(keys);
	json_decref(notarr);
}

/* ------------------------------------------------------------------ */
/* opencode.json                                                       */

static const char *const opencode_cases[] = {
	"seeded", "missing_file", "invalid", "truncated", "not_object",
	"fail_closed_empty", "fail_closed_no_catchall",
	"fail_closed_star_tool", "priority_order", "agent_deletion",
	"agent_permission_removed", "modes", "foreign_keys", "invalid_rows",
	"no_agents", NULL,
};

Test(render_opencode_json, golden)
{
	golden_cases("opencode_json", opencode_cases);
}

/* Rendering over the previous output changes nothing. */
Test(render_opencode_json, output_is_a_fixed_point)
{
	const char *const *c;
	struct rendered r, s;
	json_t *in;

	for (c = opencode_cases; *c; c++) {
		in = golden_case("opencode_json", *c, &r);
		if (r.rc == 0) {
			rendered_init(&s);
			s.rc = render_opencode_json(
				r.out[0].ptr, r.out[0].len,
				json_object_get(in, "tool_permissions"),
				json_object_get(in, "agents"),
				json_object_get(in, "prompts"),
				json_object_get(in, "models"), &s.out[0],
				s.warnings, &s.e);
			cr_expect_eq(s.rc, 0, "%s: %s", *c, s.e.msg);
			cr_expect_str_eq(s.out[0].ptr, r.out[0].ptr,
					 "%s: second render differs", *c);
			rendered_release(&s);
		}
		rendered_release(&r);
		json_decref(in);
	}
}

static json_t *parse_out(struct rendered *r)
{
	json_error_t je;
	json_t *v = json_loadb(r->out[0].ptr, r->out[0].len, 0, &je);

	cr_assert(v, "rendered opencode.json does not parse: %s", je.text);
	return v;
}

static const char *first_key(json_t *obj)
{
	void *it = json_object_iter(obj);

	return it ? json_object_iter_key(it) : "";
}

Test(render_opencode_json, seeded_state_patches_and_preserves)
{
	struct rendered r;
	json_t *in = golden_case("opencode_json", "seeded", &r), *doc, *perm,
	       *poco;

	cr_assert_eq(r.rc, 0, "%s", r.e.msg);
	cr_expect_eq(r.out[0].ptr[r.out[0].len - 1], '\n');
	doc = parse_out(&r);
	cr_expect_str_eq(first_key(doc), "$schema", "key order not kept");
	perm = json_object_get(doc, "permission");
	cr_expect_str_eq(first_key(perm), "*");
	cr_expect_str_eq(json_string_value(json_object_get(perm, "*")), "ask");
	cr_expect_str_eq(json_string_value(json_object_get(
				 json_object_get(perm, "bash"), "ls *")),
			 "allow");
	cr_expect_null(json_object_get(perm, "edit"), "stale rule survived");
	poco = json_object_get(json_object_get(doc, "agent"), "poco");
	cr_expect_str_eq(json_string_value(json_object_get(poco, "model")),
			 "google/gemini-2.0-flash");
	cr_expect_str_eq(json_string_value(json_object_get(poco, "mode")),
			 "primary");
	cr_expect(json_is_true(json_object_get(
		json_object_get(poco, "tools"), "bash")));
	cr_expect_str_eq(json_string_value(json_object_get(
				 json_object_get(poco, "permission"), "cao_*")),
			 "ask");
	cr_expect(strstr(r.out[0].ptr, "<html> & "), "<>& were escaped");
	cr_expect_eq(json_integer_value(json_object_get(
			     json_object_get(json_object_get(doc, "mcp"), "cao"),
			     "timeout")),
		     120000);
	json_decref(doc);
	rendered_release(&r);
	json_decref(in);
}

Test(render_opencode_json, invalid_existing_is_refused_with_position)
{
	struct buf out;
	struct err e = ERR_INIT;
	static const char bad[] = "{\n  \"agent\": {},\n  \"permission\" {}\n}\n";
	int rc;

	buf_init(&out, 0);
	buf_puts(&out, "untouched");
	rc = render_opencode_json(bad, sizeof(bad) - 1, NULL, NULL, NULL, NULL,
				  &out, NULL, &e);
	cr_expect_eq(rc, ERR_INVALID);
	cr_expect(!strncmp(e.msg, "opencode.json:3:16: ", 20), "got '%s'",
		  e.msg);
	cr_expect_str_eq(out.ptr, "untouched");
	buf_release(&out);
}

Test(render_opencode_json, fail_closed_catchall_comes_first)
{
	static const char *const cases[] = {
		"fail_closed_empty", "fail_closed_no_catchall", "missing_file",
		NULL,
	};
	const char *const *c;
	struct rendered r;
	json_t *in, *doc, *perm;

	for (c = cases; *c; c++) {
		in = golden_case("opencode_json", *c, &r);
		cr_assert_eq(r.rc, 0);
		doc = parse_out(&r);
		perm = json_object_get(doc, "permission");
		cr_expect_str_eq(first_key(perm), "*", "%s", *c);
		cr_expect_str_eq(json_string_value(json_object_get(perm, "*")),
				 "ask", "%s", *c);
		json_decref(doc);
		rendered_release(&r);
		json_decref(in);
	}

	/* A "*" tool without a "*" pattern gets the catch-all as its first
	 * pattern. */
	in = golden_case("opencode_json", "fail_closed_star_tool", &r);
	doc = parse_out(&r);
	perm = json_object_get(json_object_get(doc, "permission"), "*");
	cr_expect_str_eq(first_key(perm), "*");
	cr_expect_str_eq(json_string_value(json_object_get(perm, "*")), "ask");
	cr_expect_str_eq(json_string_value(json_object_get(perm, "*.env")),
			 "deny");
	json_decref(doc);
	rendered_release(&r);
	json_decref(in);
}

Test(render_opencode_json, priority_decides_key_order)
{
	struct rendered r;
	json_t *in = golden_case("opencode_json", "priority_order", &r), *doc;
	const char *expect[] = { "*", "rm *", "git *", "git push *" };
	const char *tools[] = { "edit", "*", "bash", "webfetch" };
	void *it;
	size_t i;

	doc = parse_out(&r);
	it = json_object_iter(json_object_get(doc, "permission"));
	for (i = 0; i < 4; i++, it = json_object_iter_next(
			     json_object_get(doc, "permission"), it)) {
		cr_assert(it);
		cr_expect_str_eq(json_object_iter_key(it), tools[i]);
	}
	it = json_object_iter(json_object_get(
		json_object_get(doc, "permission"), "bash"));
	for (i = 0; i < 4; i++, it = json_object_iter_next(
			     json_object_get(json_object_get(doc, "permission"),
					     "bash"),
			     it)) {
		cr_assert(it);
		cr_expect_str_eq(json_object_iter_key(it), expect[i]);
	}
	json_decref(doc);
	rendered_release(&r);
	json_decref(in);
}

Test(render_opencode_json, deleted_agents_and_stale_permissions_removed)
{
	struct rendered r;
	json_t *in = golden_case("opencode_json", "agent_deletion", &r), *doc,
	       *agent;

	doc = parse_out(&r);
	agent = json_object_get(doc, "agent");
	cr_expect_eq(json_object_size(agent), 1);
	cr_expect(json_object_get(agent, "poco"));
	cr_expect_null(json_object_get(json_object_get(agent, "poco"),
				       "permission"));
	cr_expect(json_object_get(json_object_get(agent, "poco"), "tools"));
	cr_expect_eq(json_array_size(r.warnings), 2);
	json_decref(doc);
	rendered_release(&r);
	json_decref(in);

	in = golden_case("opencode_json", "agent_permission_removed", &r);
	doc = parse_out(&r);
	cr_expect_null(json_object_get(
		json_object_get(json_object_get(doc, "agent"), "poco"),
		"permission"), "inactive rows kept a per-agent block");
	json_decref(doc);
	rendered_release(&r);
	json_decref(in);
}

Test(render_opencode_json, unknown_mode_is_omitted_with_warning)
{
	struct rendered r;
	json_t *in = golden_case("opencode_json", "modes", &r), *doc, *sb;
	char *w;

	doc = parse_out(&r);
	sb = json_object_get(json_object_get(doc, "agent"), "sandbox-worker");
	cr_expect_null(json_object_get(sb, "mode"));
	cr_expect_null(json_object_get(sb, "description"));
	cr_expect_null(json_object_get(sb, "model"));
	cr_expect_null(json_object_get(sb, "prompt"));
	cr_expect_eq(json_integer_value(json_object_get(sb, "keep")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(
				 json_object_get(sb, "permission"), "bash")),
			 "allow");
	w = warnings_text(r.warnings);
	cr_expect(strstr(w, "mode 'sandbox_agent' is not one of"), "%s", w);
	free(w);
	json_decref(doc);
	rendered_release(&r);
	json_decref(in);
}

/* ------------------------------------------------------------------ */
/* docker-mcp.yaml + mcp.env                                           */

Test(render_docker_mcp, golden)
{
	static const char *const cases[] = {
		"seeded", "empty", "only_pending", "mixed", "key_conflict",
		NULL,
	};

	golden_cases("docker_mcp", cases);
}

Test(render_docker_mcp, empty_registry_is_a_mapping)
{
	struct rendered r;
	json_t *in = golden_case("docker_mcp", "only_pending", &r);

	cr_assert_eq(r.rc, 0);
	cr_expect(strstr(r.out[0].ptr, "\nregistry: {}\n"), "%s", r.out[0].ptr);
	cr_expect(!strstr(r.out[1].ptr, "SLACK"));
	rendered_release(&r);
	json_decref(in);
}

/* Parse mcp.env the way the gateway does (skip '#' lines, trim, cut at
 * the first '=') and check every value against the stored one. */
Test(render_docker_mcp, mcp_env_reads_back_verbatim)
{
	struct rendered r;
	json_t *in = golden_case("docker_mcp", "mixed", &r), *config = NULL,
	       *srv;
	char *text, *line, *save = NULL, *eq;
	size_t i, checked = 0;

	cr_assert_eq(r.rc, 0);
	json_array_foreach(json_object_get(in, "mcp_servers"), i, srv)
		if (!strcmp(json_string_value(json_object_get(srv, "id")),
			    "mcpsecrets00001"))
			config = json_object_get(json_object_get(srv, "data"),
						 "config");
	cr_assert(config);
	text = strdup(r.out[1].ptr);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *v;

		if (line[0] == '#')
			continue;
		eq = strchr(line, '=');
		cr_assert(eq, "line without '=': %s", line);
		*eq = '\0';
		v = json_object_get(config, line);
		if (!json_is_string(v))
			continue;
		cr_expect_str_eq(eq + 1, json_string_value(v), "key %s", line);
		checked++;
	}
	cr_expect_geq(checked, 5);
	cr_expect(!strstr(r.out[1].ptr, "MULTI="), "a multi-line value was "
		  "written");
	cr_expect(!strstr(r.out[1].ptr, "TRAILING="));
	free(text);
	rendered_release(&r);
	json_decref(in);
}

Test(render_docker_mcp, either_output_may_be_null)
{
	json_t *servers = json_pack("[{s:s, s:{s:s, s:s, s:{s:s}}}]", "id",
				    "mcpnull00000001", "data", "name", "x",
				    "status", "approved", "config", "K", "v");
	struct buf a, b;
	struct err e = ERR_INIT;

	buf_init(&a, 0);
	buf_init(&b, 0);
	cr_expect_eq(render_docker_mcp(servers, &a, NULL, NULL, &e), 0);
	cr_expect_eq(render_docker_mcp(servers, NULL, &b, NULL, &e), 0);
	cr_expect(strstr(a.ptr, "image: mcp/x:latest\n"), "%s", a.ptr);
	cr_expect(strstr(b.ptr, "\nK=v\n"), "%s", b.ptr);
	buf_release(&a);
	buf_release(&b);
	json_decref(servers);
}

Test(render_docker_mcp, image_rule)
{
	static const struct {
		const char *name, *image, *expect;
	} t[] = {
		{ "n8n", "", "mcp/n8n:latest" },
		{ "n8n", NULL, "mcp/n8n:latest" },
		{ "x", "img", "img:latest" },
		{ "x", "img:1.2", "img:1.2" },
		{ "x", "mcp/n8n@sha256:061c", "mcp/n8n@sha256:061c" },
		{ "x", "host:5000/img", "host:5000/img:latest" },
		{ "x", "host:5000/team/img:2", "host:5000/team/img:2" },
		{ "x", "ghcr.io/a/b", "ghcr.io/a/b:latest" },
		{ "x", "localhost:5000/a@sha256:00", "localhost:5000/a@sha256:00" },
	};
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		buf_init(&b, 0);
		cr_expect_eq(render_mcp_image(t[i].name, t[i].image, &b), 0);
		cr_expect_str_eq(b.ptr, t[i].expect, "image '%s'",
				 t[i].image ? t[i].image : "(null)");
		buf_release(&b);
	}
}

/* ------------------------------------------------------------------ */
/* agent bundles                                                       */

Test(render_agent_bundle, golden)
{
	static const char *const cases[] = {
		"seeded", "sandbox_agent", "awkward", "yaml_lookalikes", NULL,
	};

	golden_cases("agent_bundle", cases);
}

Test(render_agent_bundle, seeded_layout)
{
	struct rendered r;
	json_t *in = golden_case("agent_bundle", "seeded", &r);

	cr_assert_eq(r.rc, 0);
	cr_expect_str_eq(r.out[0].ptr,
			 "---\n"
			 "description: Primary development agent for "
			 "PocketCoder (Poco)\n"
			 "mode: primary\n"
			 "model: google/gemini-2.0-flash\n"
			 "---\n\n"
			 "YOU ARE \"POCO\" the PocketCoder assistant.\n"
			 "Be careful with <html> & \"quotes\".\n");
	rendered_release(&r);
	json_decref(in);
}

Test(render_agent_bundle, not_a_record)
{
	struct buf out;
	struct err e = ERR_INIT;
	json_t *s = json_string("poco");

	buf_init(&out, 0);
	cr_expect_eq(render_agent_bundle(s, NULL, NULL, &out, &e),
		     ERR_INVALID);
	cr_expect_eq(render_agent_bundle(NULL, NULL, NULL, &out, &e),
		     ERR_INVALID);
	cr_expect_eq(out.len, 0);
	buf_release(&out);
	json_decref(s);
}

Test(render_agent_bundle, name_ok)
{
	static const struct {
		const char *name;
		bool ok;
	} t[] = {
		{ "poco", true },
		{ "sandbox-worker_2.v1", true },
		{ "A", true },
		{ "", false },
		{ ".hidden", false },
		{ "..", false },
		{ "a/b", false },
		{ "a b", false },
		{ "caf\xc3\xa9", false },
		{ "a\\b", false },
		{ "1234567890123456789012345678901234567890123456789012345678901"
		  "234567890123456789012345678901234567890", true },
		{ "1234567890123456789012345678901234567890123456789012345678901"
		  "2345678901234567890123456789012345678901", false },
	};
	size_t i;

	cr_expect(!render_agent_name_ok(NULL));
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_expect_eq(render_agent_name_ok(t[i].name), t[i].ok, "'%s'",
			     t[i].name);
}

/* ------------------------------------------------------------------ */
/* authorized_keys                                                     */

Test(render_authorized_keys, golden)
{
	static const char *const cases[] = { "mixed", "empty", NULL };

	golden_cases("authorized_keys", cases);
}

Test(render_authorized_keys, only_clean_sorted_unique_lines)
{
	struct rendered r;
	json_t *in = golden_case("authorized_keys", "mixed", &r);
	const char *p, *prev = NULL, *nl;
	size_t lines = 0;

	cr_assert_eq(r.rc, 0);
	cr_expect(!strstr(r.out[0].ptr, "command="));
	cr_expect(!strstr(r.out[0].ptr, "evil"));
	cr_expect(!strstr(r.out[0].ptr, "expired"));
	cr_expect(!strstr(r.out[0].ptr, "inactive"));
	cr_expect(strstr(r.out[0].ptr, "carol rsa key"),
		  "a key expiring 1 ms after now was dropped");
	for (p = r.out[0].ptr; *p; p = nl + 1, lines++) {
		nl = strchr(p, '\n');
		cr_assert(nl, "last line without newline");
		if (prev)
			cr_expect(strcmp(prev, p) < 0, "not sorted/unique");
		prev = p;
	}
	cr_expect_eq(lines, 5);
	rendered_release(&r);
	json_decref(in);
}

Test(render_authorized_keys, empty_set_and_bad_now)
{
	struct rendered r;
	json_t *in = golden_case("authorized_keys", "empty", &r);
	struct err e = ERR_INIT;
	struct buf out;

	cr_expect_eq(r.rc, 0);
	cr_expect_eq(r.out[0].len, 0);
	buf_init(&out, 0);
	cr_expect_eq(render_authorized_keys(NULL, "yesterday", &out, NULL, &e),
		     ERR_INVALID);
	cr_expect_eq(render_authorized_keys(NULL, NULL, &out, NULL, &e),
		     ERR_INVALID);
	cr_expect_eq(render_authorized_keys(NULL, "2026-13-01 00:00:00.000Z",
					    &out, NULL, &e),
		     ERR_INVALID);
	cr_expect_eq(render_authorized_keys(NULL, "2026-03-05T12:00:00Z", &out,
					    NULL, &e),
		     0);
	cr_expect_eq(out.len, 0);
	buf_release(&out);
	rendered_release(&r);
	json_decref(in);
}
