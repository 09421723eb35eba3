/*
 * sdnotify.c - READY/STOPPING/WATCHDOG for systemd (see sdnotify.h).
 * libsystemd's sd_notify() does the protocol (a datagram on the unix
 * socket NOTIFY_SOCKET names, abstract or not); this file only decides
 * when, and runs the watchdog thread.
 *
 * THREAD SAFETY NOTES: struct sdnotify's stop flag is under its mutex;
 * the watchdog thread waits on its condvar (CLOCK_MONOTONIC), so a stop
 * ends the wait at once.
 */
#include "sdnotify.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "engine/engine.h"

struct sdnotify {
	struct engine *en;           /* borrowed */
	uint64_t interval_us;        /* half WATCHDOG_USEC */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;                   /* under mu */
	pthread_t thread;
};

/* sd_notify(), with a failure said once on stderr (a notify socket that
 * refuses us would otherwise go unnoticed until systemd gives up). */
static void notify(const char *state)
{
	static bool warned;
	int rc = sd_notify(0, state);

	if (rc < 0 && !warned) {
		warned = true;
		fprintf(stderr, "pocketctl: warning: cannot notify systemd "
			"(NOTIFY_SOCKET): %s\n", strerror(-rc));
	}
}

void sdnotify_ready(const char *url)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving on %s", url);
	notify(msg);
}

void sdnotify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=draining");
}

static void *watchdog_main(void *arg)
{
	struct sdnotify *n = arg;
	uint64_t seen = engine_wakeups(n->en), now;
	struct timespec ts;

	pthread_setname_np(pthread_self(), "pctl-watchdog");
	engine_kick(n->en);
	pthread_mutex_lock(&n->mu);
	while (!n->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(n->interval_us / 1000000);
		ts.tv_nsec += (long)(n->interval_us % 1000000) * 1000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!n->stop &&
		       pthread_cond_timedwait(&n->cv, &n->mu, &ts) == 0)
			;
		if (n->stop)
			break;
		pthread_mutex_unlock(&n->mu);
		/* Alive when it woke for last round's kick (or anything else). */
		now = engine_wakeups(n->en);
		if (now != seen)
			notify("WATCHDOG=1");
		else
			fprintf(stderr, "pocketctl: watchdog: the reconcile engine "
				"has not woken for %llu ms; no ping sent\n",
				(unsigned long long)(n->interval_us / 1000));
		seen = now;
		engine_kick(n->en);
		pthread_mutex_lock(&n->mu);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

int sdnotify_start(struct sdnotify **out, struct engine *en, struct err *e)
{
	struct sdnotify *n = NULL;
	pthread_condattr_t ca;
	sigset_t all, old;
	uint64_t usec = 0;
	int rc;

	*out = NULL;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	n = calloc(1, sizeof(*n));
	if (!n)
		return err_set(e, ERR_NOMEM, "out of memory");
	n->en = en;
	n->interval_us = usec / 2 ? usec / 2 : 1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* The thread blocks every signal: SIGTERM and SIGHUP are the main
	 * thread's sigwait()'s, whenever this starts. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&n->thread, NULL, watchdog_main, n);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pthread_cond_destroy(&n->cv);
		pthread_mutex_destroy(&n->mu);
		free(n);
		return err_set(e, ERR_INTERNAL, "cannot start the watchdog "
			       "thread: %s", strerror(rc));
	}
	*out = n;
	return 0;
}

void sdnotify_free(struct sdnotify *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->thread, NULL);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	free(n);
}
