/*
 * opencode_json.c - read, patch and write OpenCode's opencode.json: the
 * permission blocks from tool_permissions, the agent entries from
 * ai_agents, ai_prompts and ai_models; every other key kept as it was.
 *
 * Fixes over the original: rule order is the intended (priority, pattern)
 * order instead of alphabetical, an empty rule set fails closed ("*":
 * "ask"), OpenCode-unknown modes are dropped, deleted agents and stale
 * per-agent blocks are removed, the existing key order survives, and the
 * output is byte-stable.
 */
#include "render.h"

#include <stdlib.h>
#include <string.h>

struct rule {
	json_t *rec;         /* borrowed */
	const char *agent;   /* "" for a global rule */
	const char *tool;
	const char *pattern;
	const char *action;
	double priority;
	size_t age;          /* index in age order: the tie-breaker */
};

/* (agent, priority, tool, pattern, age): each agent's rules end up
 * contiguous and in evaluation order. */
static int cmp_rule(const void *pa, const void *pb)
{
	const struct rule *a = pa, *b = pb;
	int c = strcmp(a->agent, b->agent);

	if (c)
		return c;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	c = strcmp(a->tool, b->tool);
	if (c)
		return c;
	c = strcmp(a->pattern, b->pattern);
	if (c)
		return c;
	return a->age < b->age ? -1 : a->age > b->age;
}

static bool action_ok(const char *a)
{
	return !strcmp(a, "allow") || !strcmp(a, "ask") || !strcmp(a, "deny");
}

static bool mode_ok(const char *m)
{
	return !strcmp(m, "primary") || !strcmp(m, "subagent") ||
	       !strcmp(m, "all");
}

/* The agent's name: data.name, else the record name. */
static const char *agent_name(json_t *rec)
{
	const char *s = render_data_str(rec, "name");

	if (*s)
		return s;
	s = json_string_value(json_object_get(rec, "name"));
	return s ? s : "";
}

/*
 * Collect the active, valid rules of recs into *out (caller frees), sorted
 * with cmp_rule. Rules for agents not in agents[] are dropped with a
 * warning. Returns 0 or ERR_NOMEM.
 */
static int collect_rules(json_t **recs, size_t n, json_t **agents,
			 size_t nagents, struct rule **out, size_t *nout,
			 json_t *warnings)
{
	struct rule *v = NULL, *r;
	json_t *data, *prio;
	size_t i, k = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return ERR_NOMEM;
	for (i = 0; i < n && !rc; i++) {
		data = json_object_get(recs[i], "data");
		if (!json_is_true(json_object_get(data, "active")))
			continue;
		r = &v[k];
		r->rec = recs[i];
		r->agent = render_data_str(recs[i], "agent");
		r->tool = render_data_str(recs[i], "tool");
		r->pattern = render_data_str(recs[i], "pattern");
		r->action = render_data_str(recs[i], "action");
		r->age = i;
		prio = json_object_get(data, "priority");
		if (json_is_number(prio)) {
			r->priority = json_number_value(prio);
		} else if (prio && !json_is_null(prio)) {
			rc = render_warn(warnings,
					 "tool_permissions '%s': priority is "
					 "not a number; 0 used",
					 render_label(recs[i]));
		}
		if (rc)
			break;
		if (!*r->tool || !*r->pattern) {
			rc = render_warn(warnings,
					 "tool_permissions '%s': empty %s; "
					 "skipped", render_label(recs[i]),
					 *r->tool ? "pattern" : "tool");
			continue;
		}
		if (!action_ok(r->action)) {
			rc = render_warn(warnings,
					 "tool_permissions '%s': action '%s' "
					 "is not one of allow|ask|deny; "
					 "skipped", render_label(recs[i]),
					 r->action);
			continue;
		}
		if (*r->agent && !render_find_id(agents, nagents, r->agent)) {
			rc = render_warn(warnings,
					 "tool_permissions '%s': agent '%s' "
					 "not found; skipped",
					 render_label(recs[i]), r->agent);
			continue;
		}
		k++;
	}
	if (rc) {
		free(v);
		return rc;
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), cmp_rule);
	*out = v;
	*nout = k;
	return 0;
}

/*
 * The permission block of rules v[0..n) (all of one agent, sorted), or
 * NULL on ERR_NOMEM. fail_closed: make sure a catch-all "*"/"*" rule
 * exists, as "ask", evaluated first.
 */
static json_t *build_block(const struct rule *v, size_t n, bool fail_closed,
			   json_t *warnings, int *rc)
{
	json_t *block = json_object(), *group;
	const char **tools = NULL;
	size_t ntools = 0, i, t, count;
	bool has_catchall = false, seen;
	const struct rule *last;

	*rc = 0;
	if (!block)
		goto nomem;
	if (n) {
		tools = calloc(n, sizeof(*tools));
		if (!tools)
			goto nomem;
	}
	/* Tools in the order of their first rule. */
	for (i = 0; i < n; i++) {
		if (!strcmp(v[i].tool, "*") && !strcmp(v[i].pattern, "*"))
			has_catchall = true;
		seen = false;
		for (t = 0; t < ntools && !seen; t++)
			seen = !strcmp(tools[t], v[i].tool);
		if (!seen)
			tools[ntools++] = v[i].tool;
	}
	fail_closed = fail_closed && !has_catchall;
	if (fail_closed) {
		seen = false;
		for (t = 0; t < ntools && !seen; t++)
			seen = !strcmp(tools[t], "*");
		if (!seen && json_object_set_new(block, "*", json_string("ask")))
			goto nomem;
	}
	for (t = 0; t < ntools; t++) {
		count = 0;
		last = NULL;
		for (i = 0; i < n; i++)
			if (!strcmp(v[i].tool, tools[t])) {
				count++;
				last = &v[i];
			}
		if (count == 1 && !strcmp(last->pattern, "*")) {
			if (json_object_set_new(block, tools[t],
						json_string(last->action)))
				goto nomem;
			continue;
		}
		group = json_object();
		/* group is stolen by block, and stays valid while block lives. */
		if (!group || json_object_set_new(block, tools[t], group))
			goto nomem;
		if (fail_closed && !strcmp(tools[t], "*") &&
		    json_object_set_new(group, "*", json_string("ask")))
			goto nomem;
		for (i = 0; i < n; i++) {
			if (strcmp(v[i].tool, tools[t]))
				continue;
			if (json_object_get(group, v[i].pattern)) {
				*rc = render_warn(warnings,
						  "tool_permissions '%s': "
						  "tool '%s' pattern '%s' is "
						  "set more than once; the "
						  "last in order wins",
						  render_label(v[i].rec),
						  v[i].tool, v[i].pattern);
				if (*rc)
					goto fail;
			}
			if (json_object_set_new(group, v[i].pattern,
						json_string(v[i].action)))
				goto nomem;
		}
	}
	free(tools);
	return block;
nomem:
	*rc = ERR_NOMEM;
fail:
	free(tools);
	json_decref(block);
	return NULL;
}

/* Set obj[key] to v (shared: the reference is incremented), or delete it
 * when v is NULL. */
static int set_or_del(json_t *obj, const char *key, json_t *v)
{
	if (!v) {
		json_object_del(obj, key);
		return 0;
	}
	return json_object_set(obj, key, v) ? ERR_NOMEM : 0;
}

/* The string data[field] (borrowed) of the record related through
 * agent.data[rel]; NULL when the relation is empty or unresolved (with a
 * warning for a dangling one) or the field is not a string. */
static json_t *related(json_t *agent, const char *rel, json_t **recs,
		       size_t n, const char *field, json_t *warnings, int *rc)
{
	const char *id = render_data_str(agent, rel);
	json_t *target, *v;

	*rc = 0;
	if (!*id)
		return NULL;
	target = render_find_id(recs, n, id);
	if (!target) {
		*rc = render_warn(warnings, "agent '%s': %s '%s' not found; "
				  "%s removed", agent_name(agent), rel, id,
				  rel);
		return NULL;
	}
	v = json_object_get(json_object_get(target, "data"), field);
	return json_is_string(v) ? v : NULL;
}

/* data[field] of rec when it is a non-empty string, else NULL. */
static json_t *nonempty(json_t *rec, const char *field)
{
	json_t *v = json_object_get(json_object_get(rec, "data"), field);

	return json_is_string(v) && json_string_length(v) ? v : NULL;
}

/* Patch one agent entry from its record and its rules. */
static int patch_agent(json_t *entry, json_t *agent, const struct rule *v,
		       size_t n, json_t **prompts, size_t nprompts,
		       json_t **models, size_t nmodels, json_t *warnings)
{
	const char *mode = render_data_str(agent, "mode");
	json_t *block, *s;
	int rc;

	rc = set_or_del(entry, "description", nonempty(agent, "description"));
	if (rc)
		return rc;
	if (*mode && !mode_ok(mode)) {
		rc = render_warn(warnings, "agent '%s': mode '%s' is not one "
				 "of primary|subagent|all; omitted",
				 agent_name(agent), mode);
		if (rc)
			return rc;
	}
	if (!mode_ok(mode))
		json_object_del(entry, "mode");
	else if (json_object_set_new(entry, "mode", json_string(mode)))
		return ERR_NOMEM;
	s = related(agent, "model", models, nmodels, "identifier", warnings,
		    &rc);
	if (!rc)
		rc = set_or_del(entry, "model",
				s && json_string_length(s) ? s : NULL);
	if (rc)
		return rc;
	s = related(agent, "prompt", prompts, nprompts, "body", warnings, &rc);
	if (!rc)
		rc = set_or_del(entry, "prompt", s);
	if (rc)
		return rc;
	if (n == 0) {
		json_object_del(entry, "permission");
		return 0;
	}
	block = build_block(v, n, false, warnings, &rc);
	if (!block)
		return rc;
	/* block is stolen. */
	return json_object_set_new(entry, "permission", block) ? ERR_NOMEM : 0;
}

/* The rules of agent id within the sorted v[0..n): *first, *count. */
static void rules_of(const struct rule *v, size_t n, const char *id,
		     size_t *first, size_t *count)
{
	size_t i;

	*first = 0;
	*count = 0;
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].agent, id))
			continue;
		if (*count == 0)
			*first = i;
		(*count)++;
	}
}

struct named {
	const char *name;
	json_t *rec;
	size_t age;
};

static int cmp_named(const void *pa, const void *pb)
{
	const struct named *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	if (c)
		return c;
	return a->age < b->age ? -1 : a->age > b->age;
}

/* Agents de-duplicated by name (latest wins, warned), sorted by name. */
static int agents_by_name(json_t **recs, size_t n, struct named **out,
			  size_t *nout, json_t *warnings)
{
	struct named *v = NULL;
	size_t i, j, k = 0, m = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return ERR_NOMEM;
	for (i = 0; i < n && !rc; i++) {
		v[k].name = agent_name(recs[i]);
		v[k].rec = recs[i];
		v[k].age = i;
		if (*v[k].name)
			k++;
		else
			rc = render_warn(warnings, "ai_agents '%s' has no name; "
					 "skipped", render_label(recs[i]));
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), cmp_named);
	for (i = 0; i < k && !rc; i = j) {
		for (j = i + 1; j < k && !strcmp(v[j].name, v[i].name); j++)
			;
		if (j - i > 1)
			rc = render_warn(warnings, "agent '%s' defined by %zu "
					 "ai_agents records; '%s' wins (latest "
					 "updated)", v[i].name, j - i,
					 render_label(v[j - 1].rec));
		v[m++] = v[j - 1];
	}
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = m;
	return 0;
}

static bool named_has(const struct named *v, size_t n, const char *name)
{
	struct named key = { name, NULL, 0 };
	size_t lo = 0, hi = n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(key.name, v[mid].name);
		if (!c)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

int render_opencode_json(const char *existing, size_t len,
			 json_t *tool_permissions, json_t *agents,
			 json_t *prompts, json_t *models, struct buf *out,
			 json_t *warnings, struct err *e)
{
	json_t **trecs = NULL, **arecs = NULL, **precs = NULL, **mrecs = NULL;
	size_t ntrecs = 0, narecs = 0, nprecs = 0, nmrecs = 0;
	struct rule *rules = NULL;
	struct named *named = NULL;
	size_t nrules = 0, nnamed = 0, i, first, count;
	json_t *doc = NULL, *block, *agent_obj, *entry;
	json_error_t jerr;
	const char *key, *id;
	void *iter;
	char *text = NULL;
	int rc;

	rc = render_sorted_records(tool_permissions, "tool_permissions",
				   &trecs, &ntrecs, warnings, e);
	if (!rc)
		rc = render_sorted_records(agents, "ai_agents", &arecs,
					   &narecs, warnings, e);
	if (!rc)
		rc = render_sorted_records(prompts, "ai_prompts", &precs,
					   &nprecs, warnings, e);
	if (!rc)
		rc = render_sorted_records(models, "ai_models", &mrecs,
					   &nmrecs, warnings, e);
	if (rc)
		goto out;

	if (!existing || len == 0) {
		doc = json_object();
		if (!doc)
			goto nomem;
	} else {
		doc = json_loadb(existing, len, 0, &jerr);
		if (!doc) {
			rc = err_set(e, ERR_INVALID, "opencode.json:%d:%d: %s",
				     jerr.line, jerr.column, jerr.text);
			goto out;
		}
		if (!json_is_object(doc)) {
			rc = err_set(e, ERR_INVALID, "opencode.json:1:1: the "
				     "top-level value is not an object");
			goto out;
		}
	}

	rc = collect_rules(trecs, ntrecs, arecs, narecs, &rules, &nrules,
			   warnings);
	if (!rc)
		rc = agents_by_name(arecs, narecs, &named, &nnamed, warnings);
	if (rc)
		goto nomem;

	/* The global block: rules with agent "" sort first. */
	rules_of(rules, nrules, "", &first, &count);
	block = build_block(count ? rules + first : NULL, count, true, warnings, &rc);
	/* block is stolen by doc. */
	if (!block || json_object_set_new(doc, "permission", block))
		goto nomem;

	agent_obj = json_object_get(doc, "agent");
	if (!json_is_object(agent_obj)) {
		if (agent_obj) {
			rc = render_warn(warnings, "opencode.json: \"agent\" is "
					 "not an object; replaced");
			if (rc)
				goto nomem;
		}
		agent_obj = json_object();
		/* stolen by doc; borrowed below while doc lives. */
		if (!agent_obj || json_object_set_new(doc, "agent", agent_obj))
			goto nomem;
	}
	/* Remove entries the store does not know (safe iteration). */
	iter = json_object_iter(agent_obj);
	while (iter) {
		key = json_object_iter_key(iter);
		iter = json_object_iter_next(agent_obj, iter);
		if (named_has(named, nnamed, key))
			continue;
		rc = render_warn(warnings, "opencode.json: agent '%s' is not an "
				 "ai_agents record; removed", key);
		if (rc)
			goto nomem;
		json_object_del(agent_obj, key);
	}
	for (i = 0; i < nnamed; i++) {
		entry = json_object_get(agent_obj, named[i].name);
		if (!json_is_object(entry)) {
			if (entry) {
				rc = render_warn(warnings, "opencode.json: agent "
						 "'%s' is not an object; "
						 "replaced", named[i].name);
				if (rc)
					goto nomem;
			}
			entry = json_object();
			if (!entry || json_object_set_new(agent_obj,
							  named[i].name, entry))
				goto nomem;
		}
		id = json_string_value(json_object_get(named[i].rec, "id"));
		first = count = 0;
		if (id && *id)
			rules_of(rules, nrules, id, &first, &count);
		rc = patch_agent(entry, named[i].rec,
				 count ? rules + first : NULL, count,
				 precs, nprecs, mrecs, nmrecs, warnings);
		if (rc)
			goto nomem;
	}

	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
				       render_real_flags(doc));
	if (!text)
		goto nomem;
	rc = buf_grow(out, strlen(text) + 1);
	if (rc) {
		rc = err_set(e, rc, "opencode.json: rendered file is larger "
			     "than the limit of %zu bytes", out->cap);
		goto out;
	}
	buf_puts(out, text);
	buf_putc(out, '\n');
	goto out;

nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	free(text);
	json_decref(doc);
	free(named);
	free(rules);
	free(trecs);
	free(arecs);
	free(precs);
	free(mrecs);
	return rc;
}
