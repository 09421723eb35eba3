/*
 * cmd_explain.c - `pocketctl api-resources` (the kinds, their short names
 * and collections) and `pocketctl explain KIND[.FIELD]` (a kind's fields:
 * type, select values, required, default, relation target, secret /
 * hidden / system flags, and the collection's access rules), both read
 * from the schema alone, as kubectl's commands of the same names read the
 * API's. Neither needs the data directory or a server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "suggest.h"

/* "toolpermissions": the lower-case plural kubectl lists by. */
static void plural_name(const struct collection *c, char *out, size_t n)
{
	cli_kind_lower(c, out, n - 1);
	strcat(out, "s");
}

static void short_names(const struct collection *c, char *out, size_t n)
{
	size_t i, used = 0;

	out[0] = '\0';
	for (i = 0; i < c->nshort_names && used < n; i++)
		used += (size_t)snprintf(out + used, n - used, "%s%s",
					 i ? "," : "", c->short_names[i]);
}

int cmd_api_resources(struct cli *cli, int argc, char **argv)
{
	const struct schema *s = cli->schema;
	const struct collection *c;
	char plural[80], sn[128];
	json_t *arr = NULL, *names;
	char *txt;
	size_t i, j;
	int first = cli_operands("api-resources", argc, argv);

	if (first < 0)
		return CLI_ERROR;
	if (first != argc)
		return cli_usage("api-resources", "usage: pocketctl api-resources [-o table|name|json]");
	if (!strcmp(cli->output, "json")) {
		arr = json_array();
		for (i = 0; arr && i < s->ncollections; i++) {
			c = &s->collections[i];
			plural_name(c, plural, sizeof(plural));
			names = json_array();
			for (j = 0; names && j < c->nshort_names; j++)
				json_array_append_new(names,
					json_string(c->short_names[j]));
			json_array_append_new(arr, json_pack("{s:s,s:o,s:s,s:s}",
				"name", plural, "shortNames", names,
				"collection", c->name, "kind", c->kind));
		}
		txt = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
		json_decref(arr);
		if (!txt) {
			fprintf(stderr, "pocketctl: out of memory\n");
			return CLI_ERROR;
		}
		printf("%s\n", txt);
		free(txt);
		return CLI_OK;
	}
	if (strcmp(cli->output, "name"))
		printf("%-20s %-12s %-20s %s\n", "NAME", "SHORTNAMES",
		       "COLLECTION", "KIND");
	for (i = 0; i < s->ncollections; i++) {
		c = &s->collections[i];
		plural_name(c, plural, sizeof(plural));
		short_names(c, sn, sizeof(sn));
		if (!strcmp(cli->output, "name"))
			printf("%s\n", plural);
		else
			printf("%-20s %-12s %-20s %s\n", plural, sn, c->name,
			       c->kind);
	}
	return CLI_OK;
}

/* The schema document's object for collection c (its "description"s). */
static json_t *collection_doc(const struct schema *s, const struct collection *c)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(s->root, "collections"), i, v)
		if (!strcmp(cli_jstr(v, "name"), c->name))
			return v;
	return NULL;
}

static json_t *field_doc(json_t *cdoc, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(cdoc, "fields"), i, v)
		if (!strcmp(cli_jstr(v, "name"), name))
			return v;
	return NULL;
}

/* "<select: allow|ask|deny>", "<relation -> ai_agents>", "<text>". */
static void type_words(const struct field *f, char *out, size_t n)
{
	size_t i, used;

	used = (size_t)snprintf(out, n, "<%s", field_type_name(f->type));
	if (f->type == FT_SELECT)
		for (i = 0; i < f->nvalues && used < n; i++)
			used += (size_t)snprintf(out + used, n - used, "%s%s",
						 i ? "|" : ": ", f->values[i]);
	if (f->type == FT_RELATION && used < n)
		used += (size_t)snprintf(out + used, n - used, " -> %s",
					 f->target);
	if (used < n)
		snprintf(out + used, n - used, ">");
}

/* " -required- default=x secret" for one field. */
static void flag_words(const struct field *f, char *out, size_t n)
{
	char *def = f->def ? json_dumps(f->def, JSON_COMPACT |
					JSON_ENCODE_ANY) : NULL;
	size_t used = 0;

#define ADD(...) \
	do { \
		if (used < n) \
			used += (size_t)snprintf(out + used, n - used, __VA_ARGS__); \
	} while (0)
	out[0] = '\0';
	if (f->required)
		ADD(" -required-");
	if (def)
		ADD(" default=%s", def);
	if (f->type == FT_RELATION)
		ADD(f->cascade ? " cascade-delete" : " delete-restricted");
	if (f->has_min)
		ADD(" min=%.15g", f->min);
	if (f->has_max)
		ADD(" max=%.15g", f->max);
	if (f->only_int)
		ADD(" integer");
	if (f->secret)
		ADD(" secret");
	if (f->hidden)
		ADD(" hidden");
	if (f->system)
		ADD(" system");
#undef ADD
	free(def);
}

static void print_field(const struct field *f, json_t *fdoc, bool alone)
{
	char type[512], flags[256];

	type_words(f, type, sizeof(type));
	flag_words(f, flags, sizeof(flags));
	if (alone) {
		printf("FIELD:    %s %s%s\n", f->name, type, flags);
		if (f->type == FT_TEXT || f->type == FT_JSON)
			printf("MAX SIZE: %zu bytes\n", f->max_size);
		if (*cli_jstr(fdoc, "description"))
			printf("\nDESCRIPTION:\n    %s\n",
			       cli_jstr(fdoc, "description"));
		return;
	}
	printf("  %-24s %s%s\n", f->name, type, flags);
	if (*cli_jstr(fdoc, "description"))
		printf("    %s\n", cli_jstr(fdoc, "description"));
}

static void print_kind(const struct schema *s, const struct collection *c)
{
	static const char *const actions[RULE__COUNT] = {
		"list", "view", "create", "update", "delete"
	};
	json_t *cdoc = collection_doc(s, c);
	char sn[128];
	size_t i;

	short_names(c, sn, sizeof(sn));
	printf("KIND:        %s\nCOLLECTION:  %s\n", c->kind, c->name);
	if (*sn)
		printf("SHORT NAMES: %s\n", sn);
	printf("NAME:        %s\n", c->name_field ? c->name_field :
	       "metadata.name (the record's name)");
	if (*cli_jstr(cdoc, "description"))
		printf("\nDESCRIPTION:\n    %s\n", cli_jstr(cdoc, "description"));
	printf("\nFIELDS (spec):\n");
	for (i = 0; i < c->nfields; i++)
		print_field(&c->fields[i], field_doc(cdoc, c->fields[i].name),
			    false);
	printf("\nRULES:\n");
	for (i = 0; i < RULE__COUNT; i++)
		printf("  %-7s %s\n", actions[i],
		       !c->rules[i] ? "superusers only" :
		       !*c->rules[i] ? "anyone" : c->rules[i]);
	if (!c->api_writable)
		printf("  (written only by the server)\n");
}

int cmd_explain(struct cli *cli, int argc, char **argv)
{
	const struct collection *c;
	const struct field *f;
	struct suggest sg;
	char kind[128], hint[128];
	const char *dot, *field;
	int i;
	size_t k;

	i = cli_operands("explain", argc, argv);
	if (i < 0)
		return CLI_ERROR;
	if (argc - i != 1)
		return cli_usage("explain", "usage: pocketctl explain KIND[.FIELD]");
	dot = strchr(argv[i], '.');
	snprintf(kind, sizeof(kind), "%.*s",
		 (int)(dot ? (size_t)(dot - argv[i]) : strlen(argv[i])), argv[i]);
	c = schema_find_kind_or_short(cli->schema, kind);
	if (!c) {
		suggest_init(&sg, kind);
		for (k = 0; k < cli->schema->ncollections; k++)
			suggest_consider(&sg, cli->schema->collections[k].kind,
					 cli->schema->collections[k].kind);
		suggest_hint(&sg, hint, sizeof(hint));
		return cli_usage("explain", "unknown kind '%s'%s", kind, hint);
	}
	if (!dot) {
		print_kind(cli->schema, c);
		return CLI_OK;
	}
	field = dot + 1;
	if (!strncmp(field, "spec.", 5))
		field += 5;
	f = collection_field(c, field);
	if (!f) {
		suggest_init(&sg, field);
		for (k = 0; k < c->nfields; k++)
			suggest_consider(&sg, c->fields[k].name,
					 c->fields[k].name);
		suggest_hint(&sg, hint, sizeof(hint));
		return cli_usage("explain", "%s has no field '%s'%s", c->kind,
				 field, hint);
	}
	printf("KIND:     %s\n", c->kind);
	print_field(f, field_doc(collection_doc(cli->schema, c), f->name), true);
	return CLI_OK;
}
