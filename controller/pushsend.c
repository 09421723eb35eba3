/*
 * pushsend.c - push delivery over HTTP (see pushsend.h): one thread
 * driving a curl multi handle. Requests wait in a queue until a transfer
 * slot is free, run together, and their results go to a second queue the
 * caller collects; curl_multi_wakeup() tells the thread about new work
 * and about stopping.
 */
#include "pushsend.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "util.h"

struct job {
	struct job *next;               /* in the queue, then in live */
	struct pushsend *ps;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url, *body;
	bool guard;
	size_t got_body, got_headers;
	int64_t started;
	char curl_err[CURL_ERROR_SIZE];
	struct pushsend_result res;
};

struct pushsend {
	pthread_t thread;
	bool started;
	atomic_bool stop;
	CURLM *multi;
	struct pushsend_opts o;
	struct netguard_cidr *allow;
	pthread_mutex_t lock;           /* guards the queues and counts */
	struct job *queue, **queue_tail; /* submitted, not started */
	struct job *live;               /* the thread's: transfers running */
	struct pushsend_result *done;   /* arrived, not collected */
	size_t ndone, capdone;
	size_t pending;                 /* submitted, not collected */
	size_t running;                 /* the thread's own count */
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->easy)
		curl_easy_cleanup(j->easy);
	curl_slist_free_all(j->hdrs);
	free(j->url);
	free(j->body);
	free(j);
}

/* curl's opensocket callback: the guard, on the address about to be
 * connected to. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose,
				 struct curl_sockaddr *a)
{
	struct job *j = arg;
	char why[160];

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (j->guard && !netguard_allowed(&a->addr, j->ps->allow,
					  j->ps->o.nallow, why, sizeof(why))) {
		j->res.refused = true;
		snprintf(j->res.error, sizeof(j->res.error),
			 "refused by the SSRF guard: %s (allow it with "
			 "--push-allow)", why);
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct job *j = arg;

	(void)p;
	j->got_body += size * n;
	return j->got_body > PUSHSEND_BODY_CAP ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct job *j = arg;

	(void)p;
	j->got_headers += size * n;
	return j->got_headers > PUSHSEND_HEADER_CAP ? 0 : size * n;
}

static int job_setup(struct job *j)
{
	CURL *c = curl_easy_init();

	if (!c)
		return -1;
	j->easy = c;
	curl_easy_setopt(c, CURLOPT_PRIVATE, j);
	curl_easy_setopt(c, CURLOPT_URL, j->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "pocketctl-push");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)j->ps->o.timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)j->ps->o.connect_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, j);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, j->curl_err);
	return 0;
}

/* A finished transfer's result into the done queue; frees j. */
static void job_done(struct pushsend *ps, struct job *j, CURLcode cc)
{
	struct pushsend_result *grown;
	long code = 0;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	j->res.code = code;
	if (code && j->res.refused) {
		/* another address of the name was allowed and answered */
		j->res.refused = false;
		j->res.error[0] = '\0';
	}
	j->res.ms = util_monotonic_ms() - j->started;
	j->res.timeout = cc == CURLE_OPERATION_TIMEDOUT;
	if (cc == CURLE_WRITE_ERROR && j->got_body > PUSHSEND_BODY_CAP)
		snprintf(j->res.error, sizeof(j->res.error), "the answer was "
			 "cut off after %d bytes of body", PUSHSEND_BODY_CAP);
	else if (cc == CURLE_WRITE_ERROR &&
		 j->got_headers > PUSHSEND_HEADER_CAP)
		snprintf(j->res.error, sizeof(j->res.error), "the answer was "
			 "cut off after %d bytes of headers",
			 PUSHSEND_HEADER_CAP);
	else if (cc != CURLE_OK && !j->res.refused)
		snprintf(j->res.error, sizeof(j->res.error), "%s",
			 *j->curl_err ? j->curl_err : curl_easy_strerror(cc));
	pthread_mutex_lock(&ps->lock);
	if (ps->ndone == ps->capdone) {
		size_t cap = ps->capdone ? 2 * ps->capdone : 64;

		grown = realloc(ps->done, cap * sizeof(*grown));
		if (grown) {
			ps->done = grown;
			ps->capdone = cap;
		}
	}
	if (ps->ndone < ps->capdone)
		ps->done[ps->ndone++] = j->res;
	else
		ps->pending--;          /* out of memory: the result is lost,
		                         * the caller's timeout retries it */
	pthread_mutex_unlock(&ps->lock);
	job_free(j);
}

/* Start queued jobs while transfer slots are free. */
static void start_queued(struct pushsend *ps)
{
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&ps->lock);
		j = ps->running < ps->o.max_inflight ? ps->queue : NULL;
		if (j) {
			ps->queue = j->next;
			if (!ps->queue)
				ps->queue_tail = &ps->queue;
		}
		pthread_mutex_unlock(&ps->lock);
		if (!j)
			return;
		j->next = NULL;
		j->started = util_monotonic_ms();
		if (job_setup(j) || curl_multi_add_handle(ps->multi, j->easy)) {
			snprintf(j->res.error, sizeof(j->res.error),
				 "cannot set up the request");
			job_done(ps, j, CURLE_FAILED_INIT);
			continue;
		}
		ps->running++;
		j->next = ps->live;
		ps->live = j;
	}
}

static void *run(void *arg)
{
	struct pushsend *ps = arg;
	struct CURLMsg *m;
	struct job *j, **pp;
	int64_t now, last_wake = 0;
	int still, left, timeout;
	bool got, owed = false;

	while (!atomic_load(&ps->stop)) {
		start_queued(ps);
		curl_multi_perform(ps->multi, &still);
		got = false;
		while ((m = curl_multi_info_read(ps->multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			j = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
					  (char **)&j);
			curl_multi_remove_handle(ps->multi, m->easy_handle);
			ps->running--;
			for (pp = &ps->live; *pp; pp = &(*pp)->next)
				if (*pp == j) {
					*pp = j->next;
					break;
				}
			job_done(ps, j, m->data.result);
			got = true;
		}
		/* results wake the caller at once after a quiet spell, then
		 * at most every PUSHSEND_WAKE_GAP_MS: a storm of answers
		 * makes a few passes, not one each */
		owed = owed || got;
		now = util_monotonic_ms();
		if (owed && now - last_wake >= PUSHSEND_WAKE_GAP_MS) {
			if (ps->o.wake)
				ps->o.wake(ps->o.wake_arg);
			last_wake = now;
			owed = false;
		}
		if (got)
			continue;         /* slots freed: start more first */
		/* Idle: no timer of its own (new work and the stop come with
		 * curl_multi_wakeup()); a long wait, not a tick. curl
		 * shortens the wait to its own timers while requests run. */
		timeout = owed ? (int)(PUSHSEND_WAKE_GAP_MS - (now - last_wake)) :
			  ps->running ? 1000 : 60000;
		curl_multi_poll(ps->multi, NULL, 0, timeout > 0 ? timeout : 1,
				NULL);
	}
	return NULL;
}

int pushsend_new(struct pushsend **out, const struct pushsend_opts *o,
		 struct err *e)
{
	struct pushsend *ps = calloc(1, sizeof(*ps));
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (!ps)
		return err_set(e, ERR_NOMEM, "out of memory");
	ps->o = *o;
	if (!ps->o.max_inflight)
		ps->o.max_inflight = 128;
	ps->queue_tail = &ps->queue;
	/* thread-safe in the libcurl we build against (7.84 and later) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(ps);
		return err_set(e, ERR_INTERNAL, "cannot initialise libcurl");
	}
	pthread_mutex_init(&ps->lock, NULL);
	if (o->nallow) {
		ps->allow = calloc(o->nallow, sizeof(*ps->allow));
		if (!ps->allow) {
			pushsend_free(ps);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		memcpy(ps->allow, o->allow, o->nallow * sizeof(*ps->allow));
	}
	ps->multi = curl_multi_init();
	if (!ps->multi) {
		pushsend_free(ps);
		return err_set(e, ERR_INTERNAL, "cannot make a curl multi "
			       "handle");
	}
	/* the thread takes no signal: the server's main thread waits for
	 * them (server.c), whenever this is started */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&ps->thread, NULL, run, ps);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pushsend_free(ps);
		return err_set(e, ERR_INTERNAL, "cannot start the push thread");
	}
	ps->started = true;
	*out = ps;
	return 0;
}

/* strdup that tells NULL apart from out of memory: NULL stays NULL. */
static int copy(char **out, const char *s)
{
	*out = s ? strdup(s) : NULL;
	return s && !*out ? -1 : 0;
}

int pushsend_submit(struct pushsend *ps, const struct pushsend_req *r,
		    struct err *e)
{
	struct job *j = calloc(1, sizeof(*j));
	struct curl_slist *h;
	size_t i;

	if (!j)
		return err_set(e, ERR_NOMEM, "out of memory");
	j->ps = ps;
	j->guard = r->guard;
	snprintf(j->res.tag, sizeof(j->res.tag), "%s", r->tag);
	snprintf(j->res.device, sizeof(j->res.device), "%s", r->device);
	j->res.attempt = r->attempt;
	if (copy(&j->url, r->url) || copy(&j->body, r->body ? r->body : ""))
		goto nomem;
	for (i = 0; r->headers && r->headers[i]; i++) {
		h = curl_slist_append(j->hdrs, r->headers[i]);
		if (!h)
			goto nomem;
		j->hdrs = h;
	}
	pthread_mutex_lock(&ps->lock);
	*ps->queue_tail = j;
	ps->queue_tail = &j->next;
	ps->pending++;
	pthread_mutex_unlock(&ps->lock);
	curl_multi_wakeup(ps->multi);
	return 0;
nomem:
	job_free(j);
	return err_set(e, ERR_NOMEM, "out of memory");
}

size_t pushsend_collect(struct pushsend *ps, struct pushsend_result **out)
{
	size_t n;

	pthread_mutex_lock(&ps->lock);
	*out = ps->done;
	n = ps->ndone;
	ps->pending -= n;
	ps->done = NULL;
	ps->ndone = ps->capdone = 0;
	pthread_mutex_unlock(&ps->lock);
	if (!n) {
		free(*out);
		*out = NULL;
	}
	return n;
}

size_t pushsend_pending(struct pushsend *ps)
{
	size_t n;

	pthread_mutex_lock(&ps->lock);
	n = ps->pending;
	pthread_mutex_unlock(&ps->lock);
	return n;
}

void pushsend_free(struct pushsend *ps)
{
	struct job *j, *next;

	if (!ps)
		return;
	if (ps->started) {
		atomic_store(&ps->stop, true);
		curl_multi_wakeup(ps->multi);
		pthread_join(ps->thread, NULL);
	}
	if (ps->multi) {
		for (j = ps->live; j; j = next) {
			next = j->next;
			curl_multi_remove_handle(ps->multi, j->easy);
			job_free(j);
		}
		curl_multi_cleanup(ps->multi);
	}
	for (j = ps->queue; j; j = next) {
		next = j->next;
		job_free(j);
	}
	free(ps->done);
	free(ps->allow);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
	curl_global_cleanup();
}

/* ---- the callers' retry policy ------------------------------------------- */

static int64_t env_var(const char *prefix, const char *what, int64_t def,
		       int64_t min, int64_t max)
{
	char name[128];

	snprintf(name, sizeof(name), "%s_%s", prefix, what);
	return util_env_int(name, def, min, max);
}

void pushsend_retry_env(struct pushsend_retry *r, struct pushsend_opts *o,
			const char *prefix, int attempts)
{
	r->max_attempts = (int)env_var(prefix, "ATTEMPTS", attempts, 1, 1000);
	r->backoff_ms = env_var(prefix, "BACKOFF_MS", 1000, 10, 600000);
	r->backoff_max_ms = 300000;
	if (r->backoff_max_ms < r->backoff_ms)
		r->backoff_max_ms = r->backoff_ms;
	r->rng = (unsigned)util_monotonic_ms();
	o->timeout_ms = env_var(prefix, "TIMEOUT_MS", 10000, 100, 600000);
	o->connect_ms = o->timeout_ms < 5000 ? o->timeout_ms : 5000;
}

int64_t pushsend_backoff(struct pushsend_retry *r, int attempt)
{
	int64_t d = r->backoff_ms;
	int i;

	for (i = 1; i < attempt && d < r->backoff_max_ms; i++)
		d *= 2;
	if (d > r->backoff_max_ms)
		d = r->backoff_max_ms;
	return d / 2 + (int64_t)(rand_r(&r->rng) % (unsigned)(d / 2 + 1));
}
