// Realtime through the official PocketBase JS SDK (pinned in package.json)
// against a real `pocketctl serve` started by run.sh (PB_URL,
// PB_ADMIN_EMAIL, PB_ADMIN_PASSWORD): collection and record subscriptions
// receive create, update and delete; unsubscribe stops delivery; view and
// list rules decide what a user receives (another user's chats never
// arrive), also after the user changes; the filter, fields and expand topic options; the raw protocol's 404 for
// an unknown client id.
//
// Node has no EventSource before 22, so the SDK needs the "eventsource"
// package there (as the SDK's README says); without it these tests skip
// with a message saying what to install.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, ADMIN_EMAIL, ADMIN_PASSWORD, clients, client, withUsers, realtimeSkip } from './lib.mjs';

const skip = await realtimeSkip();

const RUN = 'rt' + Date.now().toString(36);
const WAIT_MS = 5000;       // for an event that must arrive
const QUIET_MS = 700;       // for events that must not


// A subscription's received events, with a way to wait for them.
function recorder() {
  const events = [];
  let wake = null;
  return {
    events,
    cb: (e) => {
      events.push(e);
      if (wake) wake();
    },
    // Resolve once pred(events) holds; reject after ms.
    async until(pred, what, ms = WAIT_MS) {
      const deadline = Date.now() + ms;
      while (!pred(events)) {
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(`timed out waiting for ${what}; got ` +
            JSON.stringify(events.map((e) => [e.action, e.record?.name ?? e.record?.title ?? e.record?.id])));
        }
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.min(left, 100));
        });
        wake = null;
      }
    },
  };
}

const quiet = () => new Promise((resolve) => setTimeout(resolve, QUIET_MS));

let admin;      // superuser
let alice;      // users record, role "user"
let aliceId;
let bobId;

before(async () => {
  if (skip) return;
  ({ admin, alice, aliceId, bobId } = await withUsers(RUN));
});

after(async () => {
  // Close every SSE connection, or the process would stay alive.
  for (const pb of clients) {
    await pb.realtime.unsubscribe().catch(() => {});
  }
});

test('collection subscription receives create, update and delete (superuser)', { skip }, async () => {
  const pb = client();
  await pb.collection('_superusers').authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  const rec = recorder();
  await pb.collection('ai_prompts').subscribe('*', rec.cb);
  assert.ok(pb.realtime.isConnected);
  assert.match(pb.realtime.clientId, /^[a-z0-9]{40}$/);

  const created = await admin.collection('ai_prompts').create({ name: `${RUN}-p1`, body: 'one' });
  await admin.collection('ai_prompts').update(created.id, { body: 'two' });
  await admin.collection('ai_prompts').delete(created.id);
  const mine = (events) => events.filter((e) => e.record?.id === created.id);
  await rec.until((ev) => mine(ev).length >= 3, 'create, update and delete');

  const got = mine(rec.events);
  assert.deepEqual(got.map((e) => e.action), ['create', 'update', 'delete']);
  assert.equal(got[0].record.name, `${RUN}-p1`);
  assert.equal(got[0].record.body, 'one');
  assert.equal(got[1].record.body, 'two');
  assert.equal(got[2].record.body, 'two');   // the record as it was
  for (const e of got) {
    assert.equal(e.record.collectionName, 'ai_prompts');
    assert.equal(e.record.collectionId, 'pc_ai_prompts');
    assert.equal(typeof e.record.created, 'string');
    assert.equal(typeof e.record.updated, 'string');
  }
});

test('record subscription receives only that record', { skip }, async () => {
  const target = await admin.collection('ai_prompts').create({ name: `${RUN}-target`, body: 'a' });
  const pb = client();
  await pb.collection('_superusers').authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  const rec = recorder();
  await pb.collection('ai_prompts').subscribe(target.id, rec.cb);

  const other = await admin.collection('ai_prompts').create({ name: `${RUN}-other`, body: 'b' });
  await admin.collection('ai_prompts').update(other.id, { body: 'c' });
  await admin.collection('ai_prompts').update(target.id, { body: 'changed' });
  await rec.until((ev) => ev.some((e) => e.action === 'update'), 'the target\'s update');
  await quiet();
  assert.ok(rec.events.every((e) => e.record.id === target.id),
    `foreign events: ${JSON.stringify(rec.events)}`);
  assert.equal(rec.events.filter((e) => e.action === 'update').length, 1);
  assert.equal(rec.events[0].record.body, 'changed');

  // By collection id as well as by name.
  const byId = recorder();
  await pb.collection('pc_ai_prompts').subscribe(target.id, byId.cb);
  await admin.collection('ai_prompts').delete(target.id);
  await byId.until((ev) => ev.some((e) => e.action === 'delete'), 'the delete by collection id');
  await rec.until((ev) => ev.some((e) => e.action === 'delete'), 'the delete by name');
});

test('unsubscribe stops delivery', { skip }, async () => {
  const pb = client();
  await pb.collection('_superusers').authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  const models = recorder();
  const prompts = recorder();
  await pb.collection('ai_models').subscribe('*', models.cb);
  const unsubPrompts = await pb.collection('ai_prompts').subscribe('*', prompts.cb);

  const m1 = await admin.collection('ai_models').create({ name: `${RUN}-m1`, identifier: 'x/m1' });
  await models.until((ev) => ev.some((e) => e.record.id === m1.id), 'the first model');

  await pb.collection('ai_models').unsubscribe('*');
  const m2 = await admin.collection('ai_models').create({ name: `${RUN}-m2`, identifier: 'x/m2' });
  const p = await admin.collection('ai_prompts').create({ name: `${RUN}-still`, body: 'x' });
  // Still subscribed to prompts: the connection lives on, that one arrives.
  await prompts.until((ev) => ev.some((e) => e.record.id === p.id), 'the prompt');
  await quiet();
  assert.ok(!models.events.some((e) => e.record.id === m2.id), 'delivered after unsubscribe');

  // The last unsubscribe closes the connection.
  await unsubPrompts();
  assert.equal(pb.realtime.isConnected, false);
});

test('delivery follows the rules: a user never receives another user\'s chats', { skip }, async () => {
  const rec = recorder();
  await alice.collection('chats').subscribe('*', rec.cb);

  const bobs = await admin.collection('chats').create({ title: `${RUN}-bobs`, user: bobId });
  const hers = await admin.collection('chats').create({ title: `${RUN}-hers`, user: aliceId });
  await admin.collection('chats').update(bobs.id, { title: `${RUN}-bobs-2` });
  await admin.collection('chats').update(hers.id, { title: `${RUN}-hers-2` });
  await admin.collection('chats').delete(bobs.id);
  await admin.collection('chats').delete(hers.id);
  await rec.until((ev) => ev.some((e) => e.action === 'delete'), 'her chat\'s delete');
  await quiet();

  assert.deepEqual(rec.events.map((e) => [e.action, e.record.title]),
    [['create', `${RUN}-hers`], ['update', `${RUN}-hers-2`], ['delete', `${RUN}-hers-2`]]);
  assert.ok(rec.events.every((e) => e.record.user === aliceId));

  // A single-record subscription to bob's chat gets nothing either.
  const bobs2 = await admin.collection('chats').create({ title: `${RUN}-bobs-3`, user: bobId });
  const one = recorder();
  await alice.collection('chats').subscribe(bobs2.id, one.cb);
  await admin.collection('chats').update(bobs2.id, { title: `${RUN}-bobs-4` });
  await quiet();
  assert.equal(one.events.length, 0);
  await alice.collection('chats').unsubscribe();
});

test('secret fields reach their owner only; a guest gets nothing behind a rule', { skip }, async () => {
  const rec = recorder();
  await alice.collection('llm_keys').subscribe('*', rec.cb);
  const guest = client();
  const seen = recorder();
  await guest.collection('llm_keys').subscribe('*', seen.cb);

  await admin.collection('llm_keys').create({ provider_id: 'p', user: bobId, env_vars: { KEY: 'bob-secret' } });
  const mine = await admin.collection('llm_keys').create({ provider_id: 'p', user: aliceId, env_vars: { KEY: 'alice-secret' } });
  await rec.until((ev) => ev.some((e) => e.record.id === mine.id), 'her key');
  await quiet();
  assert.equal(rec.events.length, 1);
  assert.deepEqual(rec.events[0].record.env_vars, { KEY: 'alice-secret' });
  assert.equal(seen.events.length, 0);
  await alice.collection('llm_keys').unsubscribe();
});

test('a rule that reads only the caller follows the caller: deleted, it receives no more', { skip }, async () => {
  // healthchecks' list rule is '@request.auth.id != ""': the server checks
  // it once per client and collection, and must check again when the
  // client's user changes.
  const u = await admin.collection('users').create({
    email: `carol-${RUN}@example.com`, password: 'carol-pass-123',
    passwordConfirm: 'carol-pass-123', name: 'carol', role: 'user',
  });
  const carol = client();
  await carol.collection('users').authWithPassword(`carol-${RUN}@example.com`, 'carol-pass-123');
  const rec = recorder();
  await carol.collection('healthchecks').subscribe('*', rec.cb);
  await admin.collection('healthchecks').create({ name: `${RUN}-hc-1`, status: 'starting' });
  await admin.collection('healthchecks').create({ name: `${RUN}-hc-2`, status: 'starting' });
  await rec.until((ev) => ev.length === 2, 'both creates while she exists');
  await admin.collection('users').delete(u.id);
  await admin.collection('healthchecks').create({ name: `${RUN}-hc-3`, status: 'starting' });
  await quiet();
  assert.deepEqual(rec.events.map((e) => e.record.name), [`${RUN}-hc-1`, `${RUN}-hc-2`]);
  await carol.collection('healthchecks').unsubscribe().catch(() => {});
});

test('topic options: filter and fields', { skip }, async () => {
  const pb = client();
  await pb.collection('_superusers').authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  const filtered = recorder();
  const picked = recorder();
  await pb.collection('ai_prompts').subscribe('*', filtered.cb, { filter: `name ~ "${RUN}-keep"` });
  await pb.collection('ai_prompts').subscribe('*', picked.cb, { fields: 'id,name' });

  await admin.collection('ai_prompts').create({ name: `${RUN}-drop-1`, body: 'x' });
  const keep = await admin.collection('ai_prompts').create({ name: `${RUN}-keep-1`, body: 'y' });
  await filtered.until((ev) => ev.some((e) => e.record.id === keep.id), 'the matching record');
  await picked.until((ev) => ev.some((e) => e.record.id === keep.id), 'the projected record');
  await quiet();
  assert.ok(filtered.events.every((e) => e.record.name.startsWith(`${RUN}-keep`)),
    JSON.stringify(filtered.events));
  const p = picked.events.find((e) => e.record.id === keep.id);
  assert.deepEqual(Object.keys(p.record).sort(), ['id', 'name']);
});

test('topic option expand: related records inline, as the viewer may see them', { skip }, async () => {
  const rec = recorder();
  await alice.collection('ai_agents').subscribe('*', rec.cb, { expand: 'prompt,model' });

  const prompt = await admin.collection('ai_prompts').create({ name: `${RUN}-xp`, body: 'the prompt' });
  const model = await admin.collection('ai_models').create({ name: `${RUN}-xm`, identifier: 'google/gemini-2.0-flash' });
  const agent = await admin.collection('ai_agents').create({
    name: `${RUN}-xa`, mode: 'primary', prompt: prompt.id, model: model.id,
  });
  await rec.until((ev) => ev.some((e) => e.record.id === agent.id), 'the agent');
  const e = rec.events.find((x) => x.record.id === agent.id);
  assert.equal(e.action, 'create');
  assert.equal(e.record.expand?.prompt?.id, prompt.id);
  assert.equal(e.record.expand?.prompt?.body, 'the prompt');
  assert.equal(e.record.expand?.model?.identifier, 'google/gemini-2.0-flash');
  await admin.collection('ai_agents').delete(agent.id);
  await rec.until((ev) => ev.some((x) => x.action === 'delete' && x.record.id === agent.id), 'the delete');
  await alice.collection('ai_agents').unsubscribe();
});

// Plain fetch: needs no EventSource.
test('the raw protocol: PB_CONNECT, 204 on subscribe, 404 for an unknown client', async () => {
  const r = await fetch(`${URL}/api/realtime`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ clientId: 'no-such-client', subscriptions: ['ai_prompts/*'] }),
  });
  assert.equal(r.status, 404);
  const body = await r.json();
  assert.equal(body.status, 404);

  const bad = await fetch(`${URL}/api/realtime`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ subscriptions: [] }),
  });
  assert.equal(bad.status, 400);

  // PB_CONNECT carries the id both as the SSE id and in the data.
  const ac = new AbortController();
  const sse = await fetch(`${URL}/api/realtime`, { signal: ac.signal });
  assert.equal(sse.status, 200);
  assert.match(sse.headers.get('content-type'), /^text\/event-stream/);
  const reader = sse.body.getReader();
  let text = '';
  while (!text.includes('\n\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const id = /^id:(\S+)$/m.exec(text)?.[1];
  assert.match(id, /^[a-z0-9]{40}$/);
  assert.match(text, /^event:PB_CONNECT$/m);
  assert.equal(JSON.parse(/^data:(.*)$/m.exec(text)[1]).clientId, id);
  const ok = await fetch(`${URL}/api/realtime`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ clientId: id, subscriptions: ['ai_prompts/*', 'nope/*'] }),
  });
  assert.equal(ok.status, 204);
  ac.abort();
});
