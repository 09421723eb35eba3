/*
 * rec_skills.c - sealed SOPs for OpenCode: the latest sealed version of
 * every sop name becomes <skills>/<name>/SKILL.md in OpenCode's skill
 * format (YAML frontmatter with name and description, emitted by libyaml,
 * then the content), where <skills> is the "skills" directory next to the
 * agents directory (<root>/workspace/.opencode/skills by default).
 *
 * Only what the ledger vouches for reaches the agent: the chain is
 * verified on every pass (ledger_verify_records) and only entries of its
 * verified prefix are rendered - an entry changed in the database, forged
 * outside sealing or following a broken link is not, and the break is a
 * warning naming the entry. A name that is not a valid skill name
 * (ledger_name_ok: no '/', no "..", nothing that could leave the skills
 * directory) is skipped with a warning. Skills no longer rendered are
 * deleted by the engine's garbage collection; their then empty
 * directories are removed on a later pass, through a directory fd of the
 * skills directory reached without following links, as every rendered
 * file is.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "reconciler.h"
#include "render.h"
#include "util.h"
#include "yamljson.h"

#define SKILL_MODE 0644
#define SKILL_FILE "SKILL.md"

static const char *const reads[] = { "sops", NULL };

/* The skills directory (caller frees), or NULL when both the agents
 * directory and opencode.json are turned off. */
/* Skip a leading frontmatter block of content (the sealed name and
 * description are the ones that count). */
static const char *strip_frontmatter(const char *content)
{
	const char *p, *nl;

	if (strncmp(content, "---\n", 4) && strncmp(content, "---\r\n", 5))
		return content;
	p = strchr(content, '\n') + 1;
	while (*p) {
		nl = strchr(p, '\n');
		if (!strncmp(p, "---", 3) &&
		    (p[3] == '\n' || p[3] == '\r' || p[3] == '\0'))
			return nl ? nl + 1 : p + strlen(p);
		if (!nl)
			break;
		p = nl + 1;
	}
	return content;   /* not closed: it is content after all */
}

/* The SKILL.md bytes of one sop record into out. */
static int render_skill(json_t *rec, struct buf *out, struct err *e)
{
	const char *content = strip_frontmatter(render_data_str(rec, "content"));
	json_t *fm;
	size_t n;
	int rc;

	/* json_pack copies both strings. */
	fm = json_pack("{s:s, s:s}", "name", render_data_str(rec, "name"),
		       "description", render_data_str(rec, "description"));
	if (!fm)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = yaml_emit(out, fm, 1, e);
	json_decref(fm);
	if (!rc && (buf_puts(out, "---\n") || buf_puts(out, content)))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	n = strlen(content);
	if (!rc && n && content[n - 1] != '\n' && buf_putc(out, '\n'))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	return rc;
}

/* name -> the record of its highest version (borrowed from sops). */
static int latest_by_name(json_t *sops, json_t *latest, json_t *warnings)
{
	json_t *rec, *have, *v;
	const char *name;
	size_t i;

	json_array_foreach(sops, i, rec) {
		name = render_data_str(rec, "name");
		v = json_object_get(json_object_get(rec, "data"), "version");
		if (!ledger_name_ok(name)) {
			if (render_warn(warnings, "sops '%s': name '%.80s' is "
					"not a skill name; not rendered",
					render_label(rec), name))
				return ERR_NOMEM;
			continue;
		}
		if (!json_is_integer(v))
			continue;
		have = json_object_get(latest, name);
		if (have && json_integer_value(json_object_get(json_object_get(
				have, "data"), "version")) >=
			    json_integer_value(v))
			continue;
		/* json_object_set shares rec. */
		if (json_object_set(latest, name, rec))
			return ERR_NOMEM;
	}
	return 0;
}

/*
 * Remove the empty directories of skills that are no longer rendered,
 * relative to the skills directory opened confined (rctx_open_dir()):
 * unlinkat(AT_REMOVEDIR) removes only an empty directory and never
 * follows a link. A missing skills directory is fine; one that cannot be
 * reached without following a link is the pass's error, naming it.
 */
static int remove_stale_dirs(struct rctx *c, const char *dir, json_t *latest,
			     struct err *e)
{
	struct dirent *de;
	DIR *d = NULL;
	int dfd;

	dfd = rctx_open_dir(c, dir, e);
	if (dfd == ERR_NOT_FOUND) {
		err_clear(e);
		return 0;
	}
	if (dfd < 0)
		return dfd;
	d = fdopendir(dfd);       /* owns dfd from here on */
	if (!d) {
		close(dfd);
		return err_set(e, ERR_IO, "cannot read directory '%s': %s",
			       dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || json_object_get(latest, de->d_name))
			continue;
		/* only ever removes an empty directory */
		(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
	return 0;
}

static int reconcile(struct rctx *c, struct err *e)
{
	struct buf out = BUF_INIT;
	struct err le = ERR_INIT;
	json_t *sops, *report = NULL, *trusted = NULL, *latest = NULL, *rec;
	json_t *bad;
	const char *name;
	char *dir = NULL, *sub = NULL, *path = NULL;
	int rc, first = 0;

	rc = rctx_records(c, "sops", &sops, e);
	if (rc)
		return rc;
	dir = rctx_opencode_path(c, "skills");
	if (!dir) {
		if (rctx_path(c, "agents_dir") ||
		    rctx_path(c, "opencode_json"))
			return err_set(e, ERR_NOMEM, "out of memory");
		return render_warn(rctx_warnings(c), "skills are not rendered: "
				   "agents_dir and opencode_json are both "
				   "turned off") ? err_set(e, ERR_NOMEM,
							   "out of memory") : 0;
	}
	rc = ledger_verify_records(sops, &report, &trusted, e);
	if (rc)
		goto out;
	bad = json_object_get(report, "firstBad");
	if (json_is_object(bad) &&
	    render_warn(rctx_warnings(c), "the sop ledger does not verify at "
			"entry %lld ('%s', id %s): %s; that entry and the ones "
			"after it are not rendered (see `pocketctl ledger "
			"verify`)", (long long)json_integer_value(
			json_object_get(bad, "position")),
			json_string_value(json_object_get(bad, "name")),
			json_string_value(json_object_get(bad, "id")),
			json_string_value(json_object_get(bad, "reason")))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	latest = json_object();
	if (!latest || latest_by_name(trusted, latest, rctx_warnings(c))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = remove_stale_dirs(c, dir, latest, e);
	if (rc)
		goto out;
	json_object_foreach(latest, name, rec) {
		sub = path_join(dir, name);
		path = sub ? path_join(sub, SKILL_FILE) : NULL;
		if (!path) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		err_clear(&le);
		buf_reset(&out);
		rc = render_skill(rec, &out, &le);
		if (rc)
			rctx_keep(c, path, &le);
		else
			rc = rctx_write(c, path, &out, SKILL_MODE, NULL, &le);
		if (rc && !first) {
			first = rc;
			*e = le;
		}
		rc = 0;
		free(sub);
		free(path);
		sub = path = NULL;
	}
	rc = first;
out:
	buf_release(&out);
	json_decref(report);
	json_decref(trusted);
	json_decref(latest);
	free(dir);
	free(sub);
	free(path);
	return rc;
}

const struct reconciler rec_skills = {
	.name = "skills",
	.description = "sops (latest sealed version) -> skills/<name>/SKILL.md",
	.reads = reads,
	.reconcile = reconcile,
};
