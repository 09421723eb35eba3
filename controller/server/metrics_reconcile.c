/*
 * metrics_reconcile.c - the reconcile engine's figures as Prometheus text
 * (see metrics.h): read from the status document GET /api/v1/status
 * serves (engine_status()), so /metrics and the status page never
 * disagree, and nothing in the engine knows about Prometheus.
 *
 * Every metric is written as one block (HELP, TYPE, then its series), and
 * each series once per label set: the labels are a reconciler's name (one
 * per table row), a queue state, a container's name (unique in its
 * collection) - escaped as the exposition format asks.
 */
#include "metrics.h"

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

/* One metric of each reconciler: its status key and how to print it. */
struct rec_metric {
	const char *name, *type, *help;
	const char *key;            /* integer member of a reconciler entry */
	double scale;               /* value * scale is printed */
};

static const struct rec_metric rec_metrics[] = {
	{ "pocketctl_reconcile_passes_total", "counter",
	  "Reconcile passes run since the server started, by reconciler.",
	  "passes", 1 },
	{ "pocketctl_reconcile_errors_total", "counter",
	  "Reconcile passes that failed since the server started, by reconciler.",
	  "errors", 1 },
	{ "pocketctl_reconcile_writes_total", "counter",
	  "Files written by reconcile passes since the server started, by reconciler.",
	  "writes", 1 },
	{ "pocketctl_reconcile_duration_seconds_total", "counter",
	  "Time spent in reconcile passes since the server started, by reconciler.",
	  "passMsTotal", 1e-3 },
	{ "pocketctl_reconcile_last_duration_seconds", "gauge",
	  "Duration of the latest reconcile pass, by reconciler.",
	  "lastPassMs", 1e-3 },
	{ "pocketctl_reconcile_failures", "gauge",
	  "Consecutive failed passes now (0 once a pass succeeds), by reconciler.",
	  "failures", 1 },
	{ "pocketctl_drift_corrections_total", "counter",
	  "Hand-edited or deleted files rewritten since the server started, by reconciler.",
	  "driftCorrections", 1 },
};
#define NREC_METRICS (sizeof(rec_metrics) / sizeof(rec_metrics[0]))

static const char *const queue_states[] = {
	"ready", "processing", "delayed", "idle",
};
#define NQUEUE_STATES (sizeof(queue_states) / sizeof(queue_states[0]))

/* s as a label value: '\\', '"' and newline escaped (exposition format). */
static int put_label(struct buf *out, const char *s)
{
	int rc = 0;

	for (; !rc && *s; s++) {
		if (*s == '\\')
			rc = buf_puts(out, "\\\\");
		else if (*s == '"')
			rc = buf_puts(out, "\\\"");
		else if (*s == '\n')
			rc = buf_puts(out, "\\n");
		else
			rc = buf_putc(out, *s);
	}
	return rc;
}

static int head(struct buf *out, const char *name, const char *type,
		const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			  type);
}

/* name{label="value"} v */
static int series(struct buf *out, const char *name, const char *label,
		  const char *value, double v)
{
	int rc = buf_printf(out, "%s{%s=\"", name, label);

	if (!rc)
		rc = put_label(out, value);
	if (!rc)
		rc = buf_printf(out, "\"} %.15g\n", v);
	return rc;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* The number at o.key (integer or real), 0 when absent. */
static double jnum(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* Is condition type of entry r "True"? */
static bool condition_true(json_t *r, const char *type)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(r, "conditions"), i, c)
		if (!strcmp(jstr(c, "type"), type))
			return !strcmp(jstr(c, "status"), "True");
	return false;
}

static int render_reconcilers(json_t *recs, struct buf *out)
{
	json_t *r;
	size_t i, k;
	int rc = 0;

	for (k = 0; !rc && k < NREC_METRICS; k++) {
		const struct rec_metric *m = &rec_metrics[k];

		rc = head(out, m->name, m->type, m->help);
		json_array_foreach(recs, i, r) {
			if (rc)
				break;
			rc = series(out, m->name, "reconciler", jstr(r, "name"),
				    jnum(r, m->key) * m->scale);
		}
	}
	if (!rc)
		rc = head(out, "pocketctl_reconcile_degraded", "gauge",
			  "1 while the reconciler's Degraded condition is True.");
	json_array_foreach(recs, i, r) {
		if (rc)
			break;
		rc = series(out, "pocketctl_reconcile_degraded", "reconciler",
			    jstr(r, "name"), condition_true(r, "Degraded"));
	}
	return rc;
}

/* Reconcilers waiting in the work queue, by state. */
static int render_queue(json_t *recs, struct buf *out)
{
	size_t n[NQUEUE_STATES] = { 0 }, i, k;
	json_t *r;
	int rc;

	json_array_foreach(recs, i, r) {
		const char *st = jstr(json_object_get(r, "queue"), "state");

		for (k = 0; k < NQUEUE_STATES; k++)
			if (!strcmp(st, queue_states[k]))
				n[k]++;
	}
	rc = head(out, "pocketctl_reconcile_queue_depth", "gauge",
		  "Reconcilers in the work queue, by state (ready: due now; delayed: backing off or requeued; processing: running).");
	for (k = 0; !rc && k < NQUEUE_STATES; k++)
		rc = series(out, "pocketctl_reconcile_queue_depth", "state",
			    queue_states[k], (double)n[k]);
	return rc;
}

static json_t *find_reconciler(json_t *recs, const char *name)
{
	json_t *r;
	size_t i;

	json_array_foreach(recs, i, r)
		if (!strcmp(jstr(r, "name"), name))
			return r;
	return NULL;
}

/* Starts and restarts by container (rec_containers' actionsSinceStart). */
static int render_containers(json_t *rec, struct buf *out)
{
	json_t *acts = json_object_get(rec, "actionsSinceStart"), *v;
	const char *name;
	int rc;

	rc = head(out, "pocketctl_container_actions_total", "counter",
		  "Container starts and restarts launched since the server started, by container and action.");
	json_object_foreach(acts, name, v) {
		if (rc)
			break;
		rc = buf_puts(out, "pocketctl_container_actions_total{container=\"");
		if (!rc)
			rc = put_label(out, name);
		if (!rc)
			rc = buf_printf(out, "\",action=\"start\"} %.15g\n"
					"pocketctl_container_actions_total{container=\"",
					jnum(v, "start"));
		if (!rc)
			rc = put_label(out, name);
		if (!rc)
			rc = buf_printf(out, "\",action=\"restart\"} %.15g\n",
					jnum(v, "restart"));
	}
	return rc;
}

/* One gauge or counter without labels. */
static int plain(struct buf *out, const char *name, const char *type,
		 const char *help, double v)
{
	int rc = head(out, name, type, help);

	return rc ? rc : buf_printf(out, "%s %.15g\n", name, v);
}

/* The notification outbox (rec_push's deliveries) and cron (rec_cron). */
static int render_outbox_cron(json_t *recs, struct buf *out)
{
	json_t *push = find_reconciler(recs, "push");
	json_t *cron = find_reconciler(recs, "cron");
	json_t *d = json_object_get(push, "deliveries");
	int rc;

	rc = plain(out, "pocketctl_outbox_pending", "gauge",
		   "Notifications committed and not yet delivered.",
		   jnum(d, "pending"));
	if (!rc)
		rc = plain(out, "pocketctl_outbox_in_flight", "gauge",
			   "Notification deliveries in flight now.",
			   jnum(d, "tracked"));
	if (!rc)
		rc = plain(out, "pocketctl_cron_jobs", "gauge",
			   "Cron jobs declared.", jnum(cron, "jobs"));
	if (!rc)
		rc = plain(out, "pocketctl_cron_jobs_enabled", "gauge",
			   "Cron jobs enabled.", jnum(cron, "enabled"));
	if (!rc)
		rc = plain(out, "pocketctl_cron_fired_total", "counter",
			   "Cron slots fired.", jnum(cron, "fired"));
	return rc;
}

int metrics_render_reconcile(json_t *status, struct buf *out)
{
	json_t *recs = json_object_get(status, "reconcilers");
	json_t *eng = json_object_get(status, "engine");
	int rc;

	rc = plain(out, "pocketctl_engine_passes_total", "counter",
		   "Reconcile passes of every reconciler since the server started.",
		   jnum(eng, "passes"));
	if (!rc)
		rc = plain(out, "pocketctl_engine_wakeups_total", "counter",
			   "Engine wake-ups (a commit, a file event, a timer) since the server started.",
			   jnum(eng, "wakeups"));
	if (!rc)
		rc = plain(out, "pocketctl_engine_full_passes_total", "counter",
			   "Full passes (every reconciler) completed since the server started.",
			   jnum(eng, "fullPassCompleted"));
	if (!rc)
		rc = plain(out, "pocketctl_engine_observed_revision", "gauge",
			   "The store revision every reconciler has seen.",
			   jnum(status, "observedRevision"));
	if (!rc)
		rc = render_reconcilers(recs, out);
	if (!rc)
		rc = render_queue(recs, out);
	if (!rc)
		rc = render_containers(find_reconciler(recs, "containers"), out);
	if (!rc)
		rc = render_outbox_cron(recs, out);
	return rc;
}
