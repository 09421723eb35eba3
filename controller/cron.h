/*
 * cron.h - the domain rules of cron_jobs: validation on every write path
 * (the store write hook), the schedule of a job record, and firing due
 * slots in one store transaction each batch, so that the slot a job fired
 * for is committed with the message it created: a crash never fires a
 * slot twice and never loses one. The scheduler itself is
 * reconcilers/rec_cron.c; the agent endpoints are server/api_cron.c.
 *
 * A job's last_slot (a system field) is the newest slot that is done:
 * fired, or before the job was (re)scheduled. The write hook sets it to
 * now when a job is created, enabled again, or given a new expression or
 * time zone, so only slots after that count.
 *
 * THREAD SAFETY NOTES: no state of its own; the hook runs on whichever
 * thread writes, the fire on the engine thread.
 */
#ifndef POCKETCTL_CRON_H
#define POCKETCTL_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cronexpr.h"
#include "err.h"
#include "util.h"

struct record;
struct store_actor;
struct store_txn;

/* For tests: $POCKETCTL_CRON_CLOCK_OFFSET (signed seconds) shifts the clock
 * the scheduler, the hook and the endpoints read. */
#define CRON_CLOCK_OFFSET_ENV "POCKETCTL_CRON_CLOCK_OFFSET"

/* The scheduler's clock: wall time plus the offset, in ms. */
int64_t cron_now_ms(void);

/* The store's date form "YYYY-MM-DD HH:MM:SS.sssZ" as ms since the epoch
 * (-1 for anything else); util_format_ms() is the other way. */
int64_t cron_parse_time(const char *s);

/*
 * The store write hook of cron_jobs (governance.c lists it). On create,
 * and on an update changing cron_expression, timezone, session_mode, chat
 * or enabled: the expression must parse and fire within eight years, the
 * zone must be known (cronexpr.h), session_mode "existing" needs a chat of
 * the job's user. ERR_INVALID naming the field ("cron_expression: field 2
 * (hour): 25 is out of range 0-23") otherwise, and the write fails. Sets
 * last_slot to now on create, re-enable, or a new expression or zone.
 */
int cron_on_write(struct store_txn *t, const struct record *before,
		  struct record *after, const struct store_actor *actor,
		  struct err *e);

/*
 * A job's schedule from its data (a record's "data" object, borrowed):
 * the parsed expression into *x and its zone name into zone (UTC when
 * empty). ERR_INVALID naming the field as the hook does.
 */
int cron_job_schedule(json_t *data, struct cronexpr *x,
		      char zone[CRONTZ_NAME_MAX + 1], struct err *e);

/* One due slot of one job. */
struct cron_fire {
	const char *job_id;       /* borrowed */
	int64_t slot_ms;          /* the slot fired for */
	bool catch_up;            /* a slot missed while the server was down */
	json_t *status;           /* borrowed: the job's record status to
	                           * write with the fire (nextRun, ...) */
	struct crontz *zone;      /* borrowed: the job's zone, for the title
	                           * of a new chat; NULL: opened by name */
	/* results */
	bool fired;               /* a message was created */
	bool skipped;             /* gone, disabled or already done: nothing */
	char error[256];          /* "" or why the fire failed (the target
	                           * chat is gone): also in last_error */
};

struct cron_batch {
	struct cron_fire *fires;
	size_t n;
	int64_t now_ms;
};

/*
 * A store_write() callback: fire every slot of the batch (a struct
 * cron_batch *) in transaction t. For each job, as the original did: the
 * target chat (session_mode "existing": the job's chat, an error if empty
 * or gone; "new": a chat titled "<name> — <Mon D HH:MM>" in the job's
 * zone, of the job's user, turn "user", with the job's agent), a user
 * message (pending, parts [{"type":"text","text":prompt}]), and the job's
 * last_executed, last_status (ok|error), last_error and last_slot, with
 * its status. A job that is gone, disabled, or whose last_slot is at or
 * after the slot is skipped. Errors: the store's (then nothing of the
 * batch is kept).
 */
int cron_fire_txn(struct store_txn *t, void *arg, struct err *e);

/* One status write of a batch of them. */
struct cron_status {
	const char *job_id;       /* borrowed */
	json_t *status;           /* borrowed: the whole new status */
};
struct cron_status_batch {
	struct cron_status *items;
	size_t n;
};

/* A store_write() callback: write each status of the batch (a struct
 * cron_status_batch *) in t, one transaction for all; a job deleted
 * meanwhile is skipped. */
int cron_status_txn(struct store_txn *t, void *arg, struct err *e);

#endif
