// lib.mjs - what the compatibility tests share: the server run.sh started
// (PB_URL, PB_ADMIN_EMAIL, PB_ADMIN_PASSWORD), SDK clients made as the app
// makes them, and the two plain users (alice, bob) that every file's
// before() creates as the superuser.

import PocketBase from 'pocketbase';

export const URL = process.env.PB_URL;
export const ADMIN_EMAIL = process.env.PB_ADMIN_EMAIL;
export const ADMIN_PASSWORD = process.env.PB_ADMIN_PASSWORD;
if (!URL || !ADMIN_EMAIL || !ADMIN_PASSWORD) {
  throw new Error('run through tests/compat/run.sh (PB_URL, PB_ADMIN_EMAIL, PB_ADMIN_PASSWORD)');
}

// Every client made, so a file can close their realtime connections.
export const clients = [];

// A new SDK client on the server, without auto-cancellation (tests run
// requests side by side).
export function client() {
  const pb = new PocketBase(URL);
  pb.autoCancellation(false);
  clients.push(pb);
  return pb;
}

// Sign in a superuser client, create alice and bob (role "user", e-mails
// unique to run) and sign alice in. Resolves to { admin, alice, aliceId,
// bobId }.
export async function withUsers(run) {
  const admin = client();
  await admin.collection('_superusers').authWithPassword(ADMIN_EMAIL, ADMIN_PASSWORD);
  const ids = {};
  for (const name of ['alice', 'bob']) {
    const u = await admin.collection('users').create({
      email: `${name}-${run}@example.com`,
      password: `${name}-pass-123`,
      passwordConfirm: `${name}-pass-123`,
      name,
      role: 'user',
    });
    ids[name] = u.id;
  }
  const alice = client();
  await alice.collection('users').authWithPassword(`alice-${run}@example.com`, 'alice-pass-123');
  return { admin, alice, aliceId: ids.alice, bobId: ids.bob };
}

// The SDK's realtime needs EventSource, which node has only from 22: load
// the "eventsource" package where it is missing. Resolves to false when
// realtime can run, else to the message a realtime test skips with.
export async function realtimeSkip() {
  if (!globalThis.EventSource) {
    try {
      const mod = await import('eventsource');
      globalThis.EventSource = mod.EventSource ?? mod.default;
    } catch {
      // the caller's realtime tests skip
    }
  }
  return globalThis.EventSource ? false :
    'node < 22 needs the "eventsource" package for the SDK\'s realtime: add ' +
    '"eventsource": "3.0.7" to tests/compat/package.json devDependencies';
}
