/*
 * sdnotify.h - telling systemd how `pocketctl serve` is doing, through
 * libsystemd's sd_notify(): READY=1 once the server answers, STOPPING=1
 * when it starts to drain, and, when the unit sets WatchdogSec= (systemd
 * then passes WATCHDOG_USEC), WATCHDOG=1 from a thread of its own as long
 * as the reconcile engine goes round its loop. Everything here does
 * nothing when NOTIFY_SOCKET is unset (not started by systemd).
 *
 * Calling sequence (server.c): sdnotify_start() once the engine runs ->
 * sdnotify_ready() once civetweb listens -> ... -> sdnotify_stopping() on
 * SIGINT/SIGTERM -> sdnotify_free() before engine_free().
 *
 * THREAD SAFETY NOTES: the functions belong to the thread that owns the
 * server; the watchdog thread only calls engine_kick() and
 * engine_wakeups(), which any thread may.
 */
#ifndef POCKETCTL_SDNOTIFY_H
#define POCKETCTL_SDNOTIFY_H

#include "err.h"

struct engine;
struct sdnotify;

/*
 * When systemd asks for watchdog pings (sd_watchdog_enabled(): WATCHDOG_USEC,
 * and WATCHDOG_PID naming this process when set), start the watchdog
 * thread: every half WATCHDOG_USEC it sends WATCHDOG=1 if the engine has
 * woken since the previous round, then kicks it (engine_kick()), so an
 * idle engine proves it is alive by waking once; a stuck engine gets no
 * ping, and systemd restarts the service. *out is NULL when there is
 * nothing to do. Returns 0, or ERR_INTERNAL (the thread could not start)
 * with e set. Caller owns *out (sdnotify_free()). en is borrowed and must
 * outlive sdnotify_free().
 */
int sdnotify_start(struct sdnotify **out, struct engine *en, struct err *e);

/* READY=1 with STATUS="serving on URL". */
void sdnotify_ready(const char *url);

/* STOPPING=1 with STATUS="draining". */
void sdnotify_stopping(void);

/* Stop and join the watchdog thread. Accepts NULL. */
void sdnotify_free(struct sdnotify *n);

#endif
