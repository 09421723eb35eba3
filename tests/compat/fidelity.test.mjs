// The app's calls that tripped on PocketBase fidelity, through the official
// PocketBase JS SDK (pinned in package.json) against a real
// `pocketctl serve` started by run.sh: approving a proposal with
// {status, approved_at} (approved_at is no field: ignored, as PocketBase
// does); llm_keys {provider_id, env_vars} and model_selection {model, chat}
// created without user (the caller is the owner); the legacy realtime topic
// chats:<id> carrying the chat's message changes to viewers of the chat
// only; collections.getOne / getFullList for a superuser, refused to users.
//
// Node has no EventSource before 22: the realtime test needs the
// "eventsource" package there, as realtime.test.mjs does, and skips
// without it saying so.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ClientResponseError } from 'pocketbase';
import { clients, client, withUsers, realtimeSkip } from './lib.mjs';

const noSse = await realtimeSkip();

const RUN = 'fid' + Date.now().toString(36);
const WAIT_MS = 5000;       // for an event that must arrive
const QUIET_MS = 700;       // for events that must not

let admin;        // superuser
let alice;        // users, role "user"
let aliceId;
let bob;          // users, role "user"
let bobId;
let boss;         // users, role "admin"

before(async () => {
  ({ admin, alice, aliceId, bobId } = await withUsers(RUN));
  bob = client();
  await bob.collection('users').authWithPassword(`bob-${RUN}@example.com`, 'bob-pass-123');
  await admin.collection('users').create({
    email: `boss-${RUN}@example.com`, password: 'boss-pass-123',
    passwordConfirm: 'boss-pass-123', role: 'admin',
  });
  boss = client();
  await boss.collection('users').authWithPassword(`boss-${RUN}@example.com`, 'boss-pass-123');
});

after(async () => {
  for (const pb of clients) {
    await pb.realtime.unsubscribe().catch(() => {});
  }
});

// Resolve once pred(events) holds; reject after ms.
async function until(events, pred, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!pred(events)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(events)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('an admin approves a proposal the way the app does: {status, approved_at}', async () => {
  const p = await alice.collection('proposals').create({
    name: `${RUN}-deploy`, description: 'how we deploy', content: '1. build\n2. ship',
    authored_by: 'human', status: 'draft',
  });
  const approved = await boss.collection('proposals').update(p.id, {
    status: 'approved', approved_at: new Date().toISOString(),
  });
  assert.equal(approved.status, 'approved');
  assert.equal(approved.approved_at, undefined);
  const sops = await boss.collection('sops').getFullList({ filter: `name = "${RUN}-deploy"` });
  assert.equal(sops.length, 1);
});

test('llm_keys and model_selection created without user belong to the caller', async () => {
  const key = await alice.collection('llm_keys').create({
    provider_id: `${RUN}-openai`, env_vars: { OPENAI_API_KEY: 'sk-test' },
  });
  assert.equal(key.user, aliceId);
  assert.deepEqual(key.env_vars, { OPENAI_API_KEY: 'sk-test' });

  const global = await alice.collection('model_selection').create({ model: 'openai/gpt-5' });
  assert.equal(global.user, aliceId);
  assert.equal(global.chat, '');
  const chat = await alice.collection('chats').create({ title: `${RUN}-pick`, user: aliceId });
  const perChat = await alice.collection('model_selection').create({ model: 'x/y', chat: chat.id });
  assert.equal(perChat.user, aliceId);
  assert.equal(perChat.chat, chat.id);

  // bob sees none of it
  const seen = await bob.collection('llm_keys').getFullList({ filter: `provider_id = "${RUN}-openai"` });
  assert.equal(seen.length, 0);
});

test('chats:<id> delivers the chat\'s message changes to its viewers only', { skip: noSse }, async () => {
  const mine = await alice.collection('chats').create({ title: `${RUN}-mine`, user: aliceId });
  const his = await bob.collection('chats').create({ title: `${RUN}-his`, user: bobId });

  const own = [];
  const foreign = [];
  await alice.realtime.subscribe(`chats:${mine.id}`, (e) => own.push(e));
  await alice.realtime.subscribe(`chats:${his.id}`, (e) => foreign.push(e));

  const m = await alice.collection('messages').create({
    chat: mine.id, role: 'user', parts: [{ type: 'text', text: 'hello' }],
  });
  await boss.collection('messages').update(m.id, { engine_message_status: 'completed' });
  await bob.collection('messages').create({
    chat: his.id, role: 'user', parts: [{ type: 'text', text: 'secret' }],
  });
  await until(own, (ev) => ev.length >= 2, 'the create and the update of the message');
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));

  assert.deepEqual(own.map((e) => e.action), ['create', 'update']);
  assert.equal(own[0].record.id, m.id);
  assert.equal(own[0].record.collectionName, 'messages');
  assert.equal(own[0].record.chat, mine.id);
  assert.equal(own[1].record.engine_message_status, 'completed');
  assert.equal(foreign.length, 0, `another user's chat leaked: ${JSON.stringify(foreign)}`);

  // the chat itself moved: last_active is set by the message
  const now = await alice.collection('chats').getOne(mine.id);
  assert.ok(now.last_active >= mine.last_active && now.last_active !== '');
});

test('collections.getOne and getFullList answer a superuser, not a user', async () => {
  const c = await admin.collections.getOne('llm_keys');
  assert.equal(c.id, 'pc_llm_keys');
  assert.equal(c.name, 'llm_keys');
  assert.equal(c.type, 'base');
  const user = c.fields.find((f) => f.name === 'user');
  assert.equal(user.type, 'relation');
  assert.equal(user.collectionId, '_pb_users_auth_');
  assert.equal(c.listRule, '@request.auth.id != "" && (user = @request.auth.id || @request.auth.role = "admin")');

  const users = await admin.collections.getOne('users');
  assert.equal(users.type, 'auth');

  const all = await admin.collections.getFullList();
  assert.ok(all.some((x) => x.name === 'chats'));
  assert.ok(all.some((x) => x.name === 'messages'));

  await assert.rejects(alice.collections.getOne('llm_keys'),
    (err) => err instanceof ClientResponseError && err.status === 403);
  await assert.rejects(admin.collections.getOne('nope'),
    (err) => err instanceof ClientResponseError && err.status === 404);
});
