// App compatibility: the official PocketBase JS SDK (pinned in package.json)
// against a real `pocketctl serve` started by run.sh, which passes
// PB_URL, PB_ADMIN_EMAIL and PB_ADMIN_PASSWORD. Covers auth (superuser and
// user, authRefresh), CRUD on several collections, list parameters, expand,
// and errors surfacing as ClientResponseError the way apps read them.
// Realtime is tested in its own file.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { ClientResponseError } from 'pocketbase';
import { ADMIN_EMAIL, ADMIN_PASSWORD, client, withUsers } from './lib.mjs';


// Unique per run, so a re-run against the same server does not collide.
const RUN = Date.now().toString(36);


// Resolves to the ClientResponseError a call rejects with.
async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ClientResponseError, `not a ClientResponseError: ${err}`);
    return err;
  }
  assert.fail('the call succeeded but should have failed');
}

let admin;      // superuser client
let alice;      // users client, role "user"
let aliceId;
let bobId;

before(async () => {
  ({ admin, alice, aliceId, bobId } = await withUsers(RUN));
});

test('superuser auth: token and record in the auth store', async () => {
  const pb = client();
  const auth = await pb.collection('_superusers').authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  assert.equal(typeof auth.token, 'string');
  assert.equal(auth.record.email, ADMIN_EMAIL);
  assert.equal(auth.record.collectionName, '_superusers');
  assert.ok(pb.authStore.isValid);
  assert.ok(pb.authStore.isSuperuser);
  assert.equal(auth.record.password, undefined);
  assert.equal(auth.record.tokenKey, undefined);
});

test('user auth and authRefresh', async () => {
  const pb = client();
  const auth = await pb.collection('users').authWithPassword(`alice-${RUN}@example.com`, 'alice-pass-123');
  assert.equal(auth.record.id, aliceId);
  assert.equal(auth.record.role, 'user');
  assert.ok(pb.authStore.isValid);
  assert.ok(!pb.authStore.isSuperuser);
  const refreshed = await pb.collection('users').authRefresh();
  assert.equal(refreshed.record.id, aliceId);
  assert.equal(typeof refreshed.token, 'string');
  assert.equal(pb.authStore.token, refreshed.token);

  const bad = await failure(client().collection('users').authWithPassword(`alice-${RUN}@example.com`, 'wrong-password'));
  assert.equal(bad.status, 400);
});

test('CRUD on ai_prompts as a superuser', async () => {
  const name = `prompt-${RUN}`;
  const created = await admin.collection('ai_prompts').create({ name, body: 'You are helpful.' });
  assert.match(created.id, /^[a-z0-9]{15}$/);
  assert.equal(created.collectionName, 'ai_prompts');
  assert.equal(created.body, 'You are helpful.');
  assert.ok(created.created && created.updated);

  const one = await admin.collection('ai_prompts').getOne(created.id);
  assert.deepEqual(one, created);

  const updated = await admin.collection('ai_prompts').update(created.id, { body: 'You are terse.' });
  assert.equal(updated.body, 'You are terse.');
  assert.equal(updated.name, name);
  assert.equal(updated.created, created.created);

  // users may read prompts (rule: any signed-in user) but not write them
  const seen = await alice.collection('ai_prompts').getOne(created.id);
  assert.equal(seen.body, 'You are terse.');
  const forbidden = await failure(alice.collection('ai_prompts').update(created.id, { body: 'x' }));
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.response.message, 'Only superusers can perform this action.');

  assert.equal(await admin.collection('ai_prompts').delete(created.id), true);
  const gone = await failure(admin.collection('ai_prompts').getOne(created.id));
  assert.equal(gone.status, 404);
});

test('ai_agents with relations, expand and fields', async () => {
  const prompt = await admin.collection('ai_prompts').create({ name: `agent-prompt-${RUN}`, body: 'p' });
  const model = await admin.collection('ai_models').create({ name: `agent-model-${RUN}`, identifier: 'google/gemini-2.0-flash' });
  const agent = await admin.collection('ai_agents').create({
    name: `agent-${RUN}`, mode: 'primary', temperature: 0.7, prompt: prompt.id, model: model.id,
  });
  assert.equal(agent.prompt, prompt.id);
  assert.equal(agent.mode, 'primary');

  const viewed = await alice.collection('ai_agents').getOne(agent.id, { expand: 'prompt,model' });
  assert.equal(viewed.expand.prompt.id, prompt.id);
  assert.equal(viewed.expand.prompt.body, 'p');
  assert.equal(viewed.expand.model.identifier, 'google/gemini-2.0-flash');

  const list = await alice.collection('ai_agents').getList(1, 10, {
    filter: alice.filter('name = {:name}', { name: `agent-${RUN}` }),
    expand: 'prompt,model',
    fields: 'id,name,expand.model.identifier',
  });
  assert.equal(list.totalItems, 1);
  assert.deepEqual(list.items[0], {
    id: agent.id, name: `agent-${RUN}`, expand: { model: { identifier: 'google/gemini-2.0-flash' } },
  });

  // a relation to a missing record is a validation error on that field
  const bad = await failure(admin.collection('ai_agents').create({ name: `bad-agent-${RUN}`, prompt: 'zzzzzzzzzzzzzzz' }));
  assert.equal(bad.status, 400);
  assert.ok(bad.response.data.prompt, JSON.stringify(bad.response));

  // a prompt in use cannot be deleted
  const refused = await failure(admin.collection('ai_prompts').delete(prompt.id));
  assert.equal(refused.status, 400);
  await admin.collection('ai_agents').delete(agent.id);
  await admin.collection('ai_prompts').delete(prompt.id);
});

test('chats and messages as a user: getList, getFullList, getFirstListItem', async () => {
  const chat = await alice.collection('chats').create({ title: `chat-${RUN}`, user: aliceId });
  assert.equal(chat.user, aliceId);
  assert.equal(chat.engine_type, 'opencode');   // schema default

  for (let i = 1; i <= 7; i++) {
    await alice.collection('messages').create({
      chat: chat.id, role: 'user', user_message_status: 'pending', ai_engine_message_id: `m${i}`,
      parts: [{ type: 'text', text: `message ${i}` }],
    });
  }

  const page2 = await alice.collection('messages').getList(2, 3, {
    filter: `chat = "${chat.id}"`, sort: '-ai_engine_message_id',
  });
  assert.equal(page2.page, 2);
  assert.equal(page2.perPage, 3);
  assert.equal(page2.totalItems, 7);
  assert.equal(page2.totalPages, 3);
  assert.equal(page2.items.length, 3);
  assert.deepEqual(page2.items[0].parts, [{ type: 'text', text: 'message 4' }]);

  const skipped = await alice.collection('messages').getList(1, 2, { filter: `chat = "${chat.id}"`, skipTotal: true });
  assert.equal(skipped.totalItems, -1);
  assert.equal(skipped.totalPages, -1);

  const all = await alice.collection('messages').getFullList({ filter: `chat = "${chat.id}"`, sort: 'ai_engine_message_id', batch: 2 });
  assert.equal(all.length, 7);
  assert.deepEqual(all.map((m) => m.parts[0].text), [1, 2, 3, 4, 5, 6, 7].map((i) => `message ${i}`));

  const first = await alice.collection('messages').getFirstListItem(`chat = "${chat.id}" && ai_engine_message_id = "m5"`);
  assert.equal(first.parts[0].text, 'message 5');

  const expanded = await alice.collection('messages').getFirstListItem(`chat = "${chat.id}"`, { expand: 'chat' });
  assert.equal(expanded.expand.chat.title, `chat-${RUN}`);

  const none = await failure(alice.collection('messages').getFirstListItem(`chat = "${chat.id}" && role = "system"`));
  assert.equal(none.status, 404);

  // bob sees none of it; his own chat must be his
  const bob = client();
  await bob.collection('users').authWithPassword(`bob-${RUN}@example.com`, 'bob-pass-123');
  const bobs = await bob.collection('messages').getList(1, 50, { filter: `chat = "${chat.id}"` });
  assert.equal(bobs.totalItems, 0);
  const notHis = await failure(bob.collection('chats').create({ title: 'x', user: aliceId }));
  assert.equal(notHis.status, 400);
  const own = await bob.collection('chats').create({ title: `bob-chat-${RUN}`, user: bobId });
  assert.equal(own.user, bobId);

  // alice updates and deletes her chat; deleting cascades to the messages
  const renamed = await alice.collection('chats').update(chat.id, { title: 'renamed', archived: true });
  assert.equal(renamed.title, 'renamed');
  assert.equal(renamed.archived, true);
  await alice.collection('chats').delete(chat.id);
  const left = await admin.collection('messages').getList(1, 1, { filter: `chat = "${chat.id}"` });
  assert.equal(left.totalItems, 0);
});

test('a validation error surfaces as ClientResponseError with response.data.<field>', async () => {
  const err = await failure(admin.collection('ai_prompts').create({ name: `invalid-${RUN}` }));
  assert.equal(err.status, 400);
  assert.equal(typeof err.response.message, 'string');
  assert.equal(typeof err.response.data.body.code, 'string');
  assert.equal(typeof err.response.data.body.message, 'string');

  // a key the collection lacks is ignored, as PocketBase does
  const unknown = await admin.collection('ai_prompts').create({ name: `unknown-${RUN}`, body: 'b', colour: 'red' });
  assert.equal(unknown.colour, undefined);
  assert.equal(unknown.body, 'b');

  const escalate = await failure(alice.collection('users').update(aliceId, { role: 'admin' }));
  assert.equal(escalate.status, 403);
  assert.ok(escalate.response.data.role);
  const me = await admin.collection('users').getOne(aliceId);
  assert.equal(me.role, 'user');
});

test('not found: a missing record and an unknown collection are 404', async () => {
  const missing = await failure(admin.collection('ai_prompts').getOne('zzzzzzzzzzzzzzz'));
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.response.data, {});
  const nope = await failure(admin.collection('no_such_collection').getList(1, 1));
  assert.equal(nope.status, 404);
  const hidden = await failure(alice.collection('users').getOne(bobId));
  assert.equal(hidden.status, 404);
});

test('a bad filter is a 400 that names the position', async () => {
  const err = await failure(admin.collection('ai_prompts').getList(1, 1, { filter: 'name = ' }));
  assert.equal(err.status, 400);
  assert.match(err.response.message, /position \d+/);
});
