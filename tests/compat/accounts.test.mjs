// Accounts made with the CLI sign in with the official SDK: `pocketctl user
// create` and `user passwd` and `superuser upsert` (with --password-stdin)
// against the server run.sh started (PCTL, POCKETCTL_DATA), then
// authWithPassword as the app does it, and the old password refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ClientResponseError } from 'pocketbase';
import { client } from './lib.mjs';

const RUN = Date.now().toString(36);

// Run the CLI with the password on stdin; resolves to its stdout.
function pctl(args, password) {
  return execFileSync(process.env.PCTL, [...args, '--password-stdin'], {
    input: `${password}\n`,
    env: process.env,
    encoding: 'utf8',
  });
}

async function refused(promise) {
  await assert.rejects(promise, (err) => err instanceof ClientResponseError && err.status === 400);
}

test('a user made and re-passworded with the CLI signs in with the SDK', async () => {
  const email = `cli-user-${RUN}@example.com`;
  assert.match(pctl(['user', 'create', email, '--role', 'admin'], 'first-pass-123'),
    /user '.*' created/);
  const pb = client();
  const auth = await pb.collection('users').authWithPassword(email, 'first-pass-123');
  assert.equal(auth.record.email, email);
  assert.equal(auth.record.role, 'admin');
  assert.equal(auth.record.verified, true);

  assert.match(pctl(['user', 'passwd', email], 'second-pass-456'), /password changed/);
  await refused(client().collection('users').authWithPassword(email, 'first-pass-123'));
  const again = await client().collection('users').authWithPassword(email, 'second-pass-456');
  assert.equal(again.record.id, auth.record.id);
  // the token issued before the change no longer refreshes
  await assert.rejects(pb.collection('users').authRefresh(),
    (err) => err instanceof ClientResponseError && err.status === 401);
});

test('a superuser upserted with the CLI signs in with the SDK', async () => {
  const email = `cli-root-${RUN}@example.com`;
  pctl(['superuser', 'upsert', email], 'root-pass-1234');
  const pb = client();
  await pb.collection('_superusers').authWithPassword(email, 'root-pass-1234');
  assert.ok(pb.authStore.isSuperuser);
  pctl(['superuser', 'upsert', email], 'root-pass-5678');
  await refused(client().collection('_superusers').authWithPassword(email, 'root-pass-1234'));
  await client().collection('_superusers').authWithPassword(email, 'root-pass-5678');
});
