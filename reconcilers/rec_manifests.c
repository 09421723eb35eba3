/*
 * rec_manifests.c - the --manifests DIR --watch re-apply: a source, not a
 * renderer (RECONCILER_SOURCE). Every pass loads the manifests under the
 * directory and applies them as `pocketctl apply` does; the engine runs it
 * first in a full pass and, debounced, whenever the tree changes or the
 * checkout's HEAD or a branch moves (rctx_watch_tree()). Invalid manifests
 * apply nothing and are not retried until the files change again; the
 * Degraded condition says how many problems there are and quotes the
 * first few ("5 errors: a.yaml:3:7: ...; ...", err_list_summary()), of
 * the files and of the apply alike.
 *
 * With --watch the directory is an apply set (named after it, or
 * serve --applyset NAME) applied with prune: a manifest removed from the
 * checkout removes its record; the half-set guard refuses removing more
 * than half of the set at once, which shows as Degraded naming the count.
 *
 * Its status record is the one named "manifests" (PROTO_MANIFESTS_KEY):
 * directory, git, lastAttemptedRevision, lastAppliedRevision, dirty,
 * lastApply {created, configured, unchanged}, and observedRevision = the
 * store revision of the last apply. Without --watch it is off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "reconciler.h"

/* The reconciler's state: what it watches. */
struct watched {
	char *dir;          /* the directory, as given */
	char *applyset;     /* its apply set ("": none) */
};

static void stop(void *state)
{
	struct watched *w = state;

	if (!w)
		return;
	free(w->dir);
	free(w->applyset);
	free(w);
}

/* ERR_* codes that mean the manifests themselves are wrong. */
static bool load_invalid(int rc)
{
	return rc == ERR_INVALID || rc == ERR_TOO_LARGE;
}

static bool apply_invalid(int rc)
{
	return load_invalid(rc) || rc == ERR_CONFLICT || rc == ERR_NOT_FOUND;
}

static json_int_t count(json_t *result, const char *key)
{
	return json_integer_value(json_object_get(result, key));
}

static int reconcile(struct rctx *c, struct err *e)
{
	const struct watched *w = rctx_state(c);
	const char *dir = w->dir;
	struct err_list errs = ERR_LIST_INIT;
	json_t *result = NULL;
	char rev[64], msg[512];
	bool dirty = false, invalid = false;
	int rc, load_rc;

	rctx_watch_tree(c, dir);
	rctx_git_state(c, dir, rev, &dirty);
	/* The files' problems and the apply's, in one list (nothing is
	 * applied when there is any); e sums them up. */
	rc = rctx_apply(c, dir, w->applyset, &errs, &result, &load_rc, e);
	invalid = load_rc ? load_invalid(load_rc) : rc && apply_invalid(rc);
	rctx_status_set(c, "directory", json_string(dir));
	rctx_status_set(c, "git", json_boolean(rev[0] != '\0'));
	rctx_status_set(c, "lastAttemptedRevision", json_string(rev));
	if (rc) {
		rctx_log(c, "%s", e->msg);
		if (invalid) {
			rctx_no_retry(c);
			rctx_condition(c, "Ready", "False", "InvalidManifests",
				       e->msg);
			rctx_condition(c, "Degraded", "True",
				       "InvalidManifests", e->msg);
			rctx_condition(c, "Reconciling", "False",
				       "WaitingForChange",
				       "nothing applied; waiting for the files to change");
		}
		goto out;
	}
	rctx_status_set(c, "lastAppliedRevision", json_string(rev));
	rctx_status_set(c, "dirty", json_boolean(dirty));
	rctx_status_set(c, "lastApply", json_pack(
		"{s:O, s:O, s:O, s:O}",
		"created", json_object_get(result, "created"),
		"configured", json_object_get(result, "configured"),
		"unchanged", json_object_get(result, "unchanged"),
		"pruned", json_object_get(result, "pruned")));
	rctx_status_set(c, "applyset", json_string(w->applyset));
	rctx_observed(c, count(result, "revision"));
	if (count(result, "created") || count(result, "configured") ||
	    count(result, "pruned"))
		rctx_log(c, "applied '%s'%s%s: %lld created, %lld configured, %lld pruned",
			 dir, rev[0] ? " at " : "", rev,
			 (long long)count(result, "created"),
			 (long long)count(result, "configured"),
			 (long long)count(result, "pruned"));
	snprintf(msg, sizeof(msg), "applied '%s'%s%.12s%s", dir,
		 rev[0] ? " at " : "", rev,
		 rev[0] && dirty ? " (work tree dirty)" : "");
	rctx_condition(c, "Ready", "True", "Applied", msg);
out:
	json_decref(result);
	err_list_release(&errs);
	return rc;
}

/* On only with a manifests directory and --watch; the state is the
 * directory, as given, and its apply set. */
static int start(const struct reconciler_env *env, void **state,
		 struct err *e)
{
	struct watched *w;

	if (!env->manifests_dir || !*env->manifests_dir ||
	    !env->watch_manifests)
		return RECONCILER_OFF;
	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(e, ERR_NOMEM, "out of memory");
	w->dir = strdup(env->manifests_dir);
	w->applyset = strdup(env->manifests_applyset ?
			     env->manifests_applyset : "");
	if (!w->dir || !w->applyset) {
		stop(w);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	*state = w;
	return 0;
}

const struct reconciler rec_manifests = {
	.name = PROTO_MANIFESTS_KEY,
	.description = "re-apply of the watched manifests directory",
	.flags = RECONCILER_SOURCE,
	.start = start,
	.stop = stop,
	.reconcile = reconcile,
};
