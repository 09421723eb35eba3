/*
 * test_chat_activity.c - chats.last_active from the store's write hooks
 * (chat_activity.c), with no HTTP layer: a chat's create and every update
 * set it within the same change (one revision), a value written for it is
 * replaced, a message created in the
 * chat moves it, a message update does not, and a message whose write
 * fails leaves the chat as it was.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static struct schema *ca_schema;
static struct store *ca_store;
static char ca_dir[256];
static char ca_user[ID_LEN + 1];
static char ca_chat[ID_LEN + 1];

static void ca_setup(void)
{
	tl_store_setup(ca_dir, sizeof(ca_dir), "chatact", NULL, 0, &ca_schema,
		       &ca_store);
	tl_create(ca_store, "users",
		  "{'email': 'u@x.io', 'password': 'h', 'role': 'user'}",
		  ca_user);
}

static void ca_teardown(void)
{
	tl_store_teardown(ca_dir, &ca_schema, &ca_store);
}

/* A few milliseconds, so that the next timestamp differs. */
static void ca_tick(void)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* The chat's stored last_active, copied into out. */
static void ca_last_active(char *out, size_t n)
{
	struct err e = ERR_INIT;
	struct record r;
	const char *v;

	cr_assert_eq(store_get(ca_store, "chats", ca_chat, &r, &e), 0, "%s",
		     e.msg);
	v = json_string_value(json_object_get(r.data, "last_active"));
	cr_assert(v && *v, "last_active is empty");
	snprintf(out, n, "%s", v);
	record_release(&r);
}

static void ca_new_chat(void)
{
	char text[128];

	snprintf(text, sizeof(text), "{'title': 't', 'user': '%s'}", ca_user);
	tl_create(ca_store, "chats", text, ca_chat);
}

TestSuite(chat_activity, .init = ca_setup, .fini = ca_teardown);

Test(chat_activity, chat_writes_set_it)
{
	char t0[32], t1[32], t2[32];
	int64_t head;

	/* one write, one change: the hook amends it (one revision) */
	head = store_head(ca_store);
	ca_new_chat();
	cr_expect_eq(store_head(ca_store), head + 1);
	ca_last_active(t0, sizeof(t0));
	ca_tick();
	head = store_head(ca_store);
	tl_patch(ca_store, "chats", ca_chat, "{'title': 'renamed'}");
	cr_expect_eq(store_head(ca_store), head + 1);
	ca_last_active(t1, sizeof(t1));
	cr_expect_gt(strcmp(t1, t0), 0, "%s then %s", t0, t1);
	/* a value the writer sends is replaced by the write's own time */
	ca_tick();
	tl_patch(ca_store, "chats", ca_chat,
		 "{'last_active': '2000-01-01 00:00:00.000Z'}");
	ca_last_active(t2, sizeof(t2));
	cr_expect_gt(strcmp(t2, t1), 0, "%s then %s", t1, t2);
}

Test(chat_activity, new_messages_move_it_updates_do_not)
{
	char t0[32], t1[32], t2[32], text[160], msg[ID_LEN + 1];

	ca_new_chat();
	ca_last_active(t0, sizeof(t0));
	ca_tick();
	snprintf(text, sizeof(text), "{'chat': '%s', 'role': 'user'}", ca_chat);
	tl_create(ca_store, "messages", text, msg);
	ca_last_active(t1, sizeof(t1));
	cr_expect_gt(strcmp(t1, t0), 0, "%s then %s", t0, t1);
	ca_tick();
	tl_patch(ca_store, "messages", msg,
		 "{'engine_message_status': 'completed'}");
	ca_last_active(t2, sizeof(t2));
	cr_expect_str_eq(t2, t1);
}

Test(chat_activity, a_failed_message_write_leaves_the_chat)
{
	char t0[32], t1[32];
	struct err e = ERR_INIT;
	struct store_txn *t = NULL;
	struct store_put p;
	json_t *data;

	ca_new_chat();
	ca_last_active(t0, sizeof(t0));
	ca_tick();
	/* the message is written, then the transaction is given up */
	data = json_pack("{s:s, s:s}", "chat", ca_chat, "role", "user");
	cr_assert(data);
	memset(&p, 0, sizeof(p));
	p.collection = "messages";
	p.data = data;
	p.mode = STORE_CREATE;
	cr_assert_eq(store_begin(ca_store, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s", e.msg);
	store_abort(t);
	json_decref(data);
	ca_last_active(t1, sizeof(t1));
	cr_expect_str_eq(t1, t0);
}
