// status.test.mjs - the status page at /_/ in headless Chromium against
// the real server: headers, sign-in (wrong password, plain user, expired
// token), the overview, live updates, drift, markup shown as text, record
// edits with the server's errors, the feed over EventSource with a watch
// ticket, who made each change, reconnecting (within the ticket's life and
// after it, with a new ticket), and screenshots.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startServer, openBrowser, newPage, signIn, text, SU, ADMIN, PLAIN, ARTIFACTS } from "./lib.mjs";

let srv, browser;
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// Watch tickets open streams for 3 s here (60 s by default), so that a
// server away for longer makes the page ask for a new one.
const TICKET_TTL_S = 3;
process.env.POCKETCTL_WATCH_TICKET_TTL = String(TICKET_TTL_S);

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startServer();
  browser = await openBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.cleanup();
});

async function signedIn(who = SU, width, height) {
  const page = await newPage(browser, width, height);
  await signIn(page, srv.url, who);
  await page.waitForSelector("#reconcilers tbody tr", { timeout: 15000 });
  await page.waitForSelector('#live[data-state="live"]', { timeout: 15000 });
  return page;
}

test("/ redirects to /_/, every asset carries the CSP, nosniff and an ETag", async () => {
  const r = await fetch(`${srv.url}/`, { redirect: "manual" });
  assert.equal(r.status, 302);
  assert.equal(r.headers.get("location"), "/_/");
  for (const p of ["/_/", "/_/app.js", "/_/api.js", "/_/dom.js", "/_/views.js", "/_/records.js", "/_/app.css"]) {
    const a = await fetch(srv.url + p);
    assert.equal(a.status, 200, p);
    assert.equal(a.headers.get("content-security-policy"), CSP, p);
    assert.equal(a.headers.get("x-content-type-options"), "nosniff", p);
    const etag = a.headers.get("etag");
    assert.match(etag, /^"[0-9a-f]{32}"$/, p);
    const again = await fetch(srv.url + p, { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304, p);
  }
  assert.match((await fetch(`${srv.url}/_/app.js`)).headers.get("content-type"), /^text\/javascript/);
  assert.equal((await fetch(`${srv.url}/_/nope.js`)).status, 404);
});

test("a wrong password and a plain user are refused with a message", async () => {
  const page = await newPage(browser);
  await signIn(page, srv.url, { email: SU.email, password: "wrong-password-1" });
  await page.waitForFunction(() => /Wrong e-mail or password/.test(document.querySelector("#signin-msg").textContent));
  await page.evaluate(() => { document.querySelector("#email").value = ""; document.querySelector("#password").value = ""; });
  await page.click('input[name="as"][value="admin"]');
  await page.type("#email", PLAIN.email);
  await page.type("#password", PLAIN.password);
  await page.click("#signin-form button");
  await page.waitForFunction(() => /Not allowed/.test(document.querySelector("#signin-msg").textContent));
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.equal(await page.$eval("#app", (e) => e.hidden), true);
  assert.deepEqual(page.problems.filter((p) => !/status of 40[03]/.test(p)), []);
  await page.close();
});

test("signed in, the overview lists every reconciler; no console error", async () => {
  const page = await signedIn();
  const want = (await srv.api("/api/v1/status")).body.reconcilers.map((r) => r.name).sort();
  const shown = (await page.$$eval("#reconcilers tbody tr", (rows) => rows.map((r) => r.dataset.reconciler))).sort();
  assert.deepEqual(shown, want);
  const ctrs = await page.$$eval("#containers tbody tr", (rows) => rows.map((r) => r.dataset.container));
  assert.ok(ctrs.includes("pocketcoder-opencode"), ctrs.join());
  assert.ok(Number(await page.$eval("#head", (e) => e.dataset.head)) > 0);
  await page.screenshot({ path: path.join(ARTIFACTS, "overview-desktop.png") });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("an admin user signs in too; the token lives in sessionStorage", async () => {
  const page = await signedIn(ADMIN);
  const s = await page.evaluate(() => JSON.parse(sessionStorage.getItem("pocketctl.session")));
  assert.equal(s.kind, "admin");
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("a record changed through the API shows up live", async () => {
  const page = await signedIn();
  const agent = (await srv.api("/api/collections/ai_agents/records?filter=" + encodeURIComponent("name='poco'"))).body.items[0];
  await page.goto(`${srv.url}/_/#records/ai_agents/${agent.id}`);
  await page.waitForSelector("#record-json");
  const marker = `live-${Date.now()}`;
  const t0 = Date.now();
  const r = await srv.api(`/api/collections/ai_agents/records/${agent.id}`, { method: "PATCH", body: { description: marker } });
  assert.equal(r.status, 200);
  await page.waitForFunction((m) => document.querySelector("#record-json").textContent.includes(m), { timeout: 5000 }, marker);
  const ms = Date.now() - t0;
  console.log(`# write -> DOM: ${ms} ms`);
  // Generous: a loaded shared machine with a sanitizer build. The figure
  // without load is in tests/bench/bench_ui.sh.
  assert.ok(ms < 3000, `${ms} ms`);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("a rendered file deleted by hand shows a DriftCorrected event", async () => {
  const page = await signedIn();
  await page.goto(`${srv.url}/_/#timeline`);
  await page.waitForSelector(".chart svg");
  const file = path.join(srv.root, "workspace/.opencode/opencode.json");
  fs.rmSync(file);
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#events li[data-kind="DriftCorrected"]')].some((li) => li.textContent.includes("opencode.json")),
  { timeout: 15000 });
  assert.ok(fs.existsSync(file));
  await page.screenshot({ path: path.join(ARTIFACTS, "timeline-desktop.png") });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("a record holding markup and script is shown as text; nothing runs", async () => {
  const page = await signedIn();
  const evil = `<img src=x onerror="alert('img')"><script>alert('script')</script><b>bold</b>`;
  const agent = (await srv.api("/api/collections/ai_agents/records?filter=" + encodeURIComponent("name='poco'"))).body.items[0];
  assert.equal((await srv.api(`/api/collections/ai_agents/records/${agent.id}`, { method: "PATCH", body: { description: evil } })).status, 200);
  await page.goto(`${srv.url}/_/#records/ai_agents/${agent.id}`);
  await page.waitForSelector("#record-json");
  await page.waitForFunction(() => document.querySelector("#record-json").textContent.includes("onerror"));
  assert.equal(await page.$$eval("#view img, #view script, #view b", (e) => e.length), 0);
  await page.goto(`${srv.url}/_/#overview`);
  await page.goto(`${srv.url}/_/#timeline`);
  await page.waitForSelector(".chart svg");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(page.dialogs, []);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("a superuser edits a record; the server's error shows beside the field", async () => {
  const page = await signedIn();
  const agent = (await srv.api("/api/collections/ai_agents/records?filter=" + encodeURIComponent("name='poco'"))).body.items[0];
  await page.goto(`${srv.url}/_/#records/ai_agents/${agent.id}`);
  await page.waitForSelector("#edit-form #f-mode");
  await page.$eval("#f-mode", (e) => { e.value = ""; });
  await page.type("#f-mode", "no-such-mode");
  await page.click("#edit-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#e-mode").textContent.length > 0, { timeout: 5000 });
  await page.$eval("#f-mode", (e) => { e.value = "primary"; });
  await page.$eval("#f-description", (e) => { e.value = "edited in the page"; });
  await page.click("#edit-form button[type=submit]");
  await page.waitForFunction(() => /Saved/.test(document.querySelector("#edit-form output").textContent), { timeout: 5000 });
  const now = (await srv.api(`/api/collections/ai_agents/records/${agent.id}`)).body;
  assert.equal(now.description, "edited in the page");
  assert.deepEqual(page.problems.filter((p) => !/status of 400/.test(p)), []);
  await page.close();
});

test("an expired token goes back to sign-in with a message", async () => {
  const page = await signedIn();
  await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem("pocketctl.session"));
    s.token = s.token.slice(0, -4) + "AAAA";
    sessionStorage.setItem("pocketctl.session", JSON.stringify(s));
  });
  await page.reload();
  await page.waitForFunction(() => /expired/.test(document.querySelector("#signin-msg").textContent), { timeout: 10000 });
  assert.equal(await page.$eval("#signin", (e) => e.hidden), false);
  await page.close();
});

test("the page says it is reconnecting while the server is away, then resumes without losing a change", async () => {
  const page = await signedIn();
  await page.goto(`${srv.url}/_/#timeline`);
  await page.waitForSelector(".chart svg");
  await srv.stop();
  await page.waitForSelector('#live[data-state="reconnecting"]', { timeout: 15000 });
  await srv.start();
  await page.waitForSelector('#live[data-state="live"]', { timeout: 20000 });
  const r = await srv.api("/api/collections/ai_prompts/records", { method: "POST", body: { name: "after-restart", body: "x" } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await page.waitForFunction(() => document.querySelector("#events").textContent.includes("after-restart"), { timeout: 10000 });
  await page.close();
});

test("the live feed is an EventSource opened with a watch ticket; the token is in no URL", async () => {
  const page = await newPage(browser);
  const seen = [];
  page.on("request", (q) => seen.push({ url: q.url(), type: q.resourceType(), auth: q.headers().authorization }));
  await signIn(page, srv.url, SU);
  await page.waitForSelector('#live[data-state="live"]', { timeout: 15000 });
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("pocketctl.session")).token);
  const streams = seen.filter((q) => q.url.includes("/api/v1/watch?"));
  assert.ok(streams.length >= 1, JSON.stringify(seen.map((q) => q.url)));
  assert.equal(streams[0].type, "eventsource");
  assert.match(streams[0].url, /[?&]ticket=[^&]+/);
  assert.equal(streams[0].auth, undefined);
  assert.ok(seen.every((q) => !q.url.includes(token)), "the token went into a URL");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("the timeline says who made each change: in full to a superuser, as \"superuser\" to an admin user", async () => {
  // One page at a time: a page in the background draws no frames.
  for (const [who, want] of [[SU, `by superuser:${SU.email}`], [ADMIN, "by superuser"]]) {
    const page = await signedIn(who);
    await page.goto(`${srv.url}/_/#timeline`);
    await page.waitForSelector(".chart svg");
    const marker = `actor-${who === SU ? "su" : "admin"}-${Date.now()}`;
    const r = await srv.api("/api/collections/ai_prompts/records", { method: "POST", body: { name: marker, body: "x" } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const actor = await page.waitForFunction((m) => {
      const li = [...document.querySelectorAll("#events li")].find((x) => x.textContent.includes(m));
      return li && li.querySelector(".actor").textContent;
    }, { timeout: 10000 }, marker).then((h) => h.jsonValue());
    assert.equal(actor, want);
    if (who === ADMIN) assert.ok(!(await text(page, "#events")).includes(SU.email));
    assert.deepEqual(page.problems, []);
    await page.close();
  }
});

test("away longer than the ticket lives, the page takes a new ticket and resumes where it was", async () => {
  const page = await signedIn();
  await page.goto(`${srv.url}/_/#timeline`);
  await page.waitForSelector(".chart svg");
  await srv.stop();
  await page.waitForSelector('#live[data-state="reconnecting"]', { timeout: 15000 });
  await new Promise((r) => setTimeout(r, (TICKET_TTL_S + 1) * 1000));
  const tickets = [];
  page.on("request", (q) => {
    if (q.url().endsWith("/api/v1/watch/tickets")) tickets.push(q.url());
  });
  const streams = [];
  page.on("request", (q) => {
    if (q.url().includes("/api/v1/watch?")) streams.push(new URL(q.url()).searchParams);
  });
  const before = Number(await page.$eval("#head-top", (e) => e.dataset.head));
  await srv.start();
  await page.waitForSelector('#live[data-state="live"]', { timeout: 30000 });
  assert.ok(tickets.length >= 1, "no new ticket was asked for");
  // The new stream starts after the last change the page had.
  const since = Number(streams[streams.length - 1].get("since"));
  assert.ok(since > 0 && since <= before, `since=${since}, head before ${before}`);
  const r = await srv.api("/api/collections/ai_prompts/records", { method: "POST", body: { name: "after-expiry", body: "x" } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await page.waitForFunction(() => document.querySelector("#events").textContent.includes("after-expiry"), { timeout: 10000 });
  await page.close();
});

test("screenshots at desktop and phone width", async () => {
  for (const [name, w, hgt] of [["desktop", 1280, 900], ["phone", 390, 844]]) {
    const page = await signedIn(SU, w, hgt);
    await page.screenshot({ path: path.join(ARTIFACTS, `overview-${name}.png`), fullPage: true });
    await page.goto(`${srv.url}/_/#files`);
    await page.waitForSelector("#files tbody tr");
    const secret = await page.$eval('#files tr[data-path="mcp_config/mcp.env"]', (e) => e.textContent);
    assert.match(secret, /secret/);
    await page.screenshot({ path: path.join(ARTIFACTS, `files-${name}.png`), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page is ${overflow}px wider than the ${name} viewport`);
    assert.deepEqual(page.problems, []);
    await page.close();
  }
});

test("keyboard: Tab reaches the actions, a live change keeps the focus, Enter runs it", async () => {
  const page = await signedIn();
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement?.id === "act-reconcile")) break;
  }
  assert.equal(await page.evaluate(() => document.activeElement?.id), "act-reconcile");
  const head = Number(await page.$eval("#head-top", (e) => e.dataset.head));
  const agent = (await srv.api("/api/collections/ai_agents/records?filter=" + encodeURIComponent("name='poco'"))).body.items[0];
  await srv.api(`/api/collections/ai_agents/records/${agent.id}`, { method: "PATCH", body: { description: `focus-${Date.now()}` } });
  await page.waitForFunction((h) => Number(document.querySelector("#head-top").dataset.head) > h, { timeout: 5000 }, head);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await page.evaluate(() => document.activeElement?.id), "act-reconcile");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /full pass \d+ completed/.test(document.querySelector("#action-result").textContent), { timeout: 30000 });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("records: filter, sort and paging through the records API; relations are links; secrets masked", async () => {
  for (let i = 0; i < 60; i += 15) {
    await Promise.all(Array.from({ length: 15 }, (_, j) =>
      srv.api("/api/collections/ai_prompts/records", { method: "POST", body: { name: `bulk-${String(i + j).padStart(2, "0")}`, body: "b" } })));
  }
  const page = await signedIn();
  const q = new URLSearchParams({ filter: "name ~ 'bulk-'", sort: "name", page: "1" });
  await page.goto(`${srv.url}/_/#records/ai_prompts?${q}`);
  await page.waitForSelector("#records tbody tr");
  assert.match(await page.$eval("#view", (e) => e.textContent), /60 records · page 1 of 2/);
  assert.equal(await page.$$eval("#records tbody tr", (r) => r.length), 50);
  assert.equal(await page.$eval("#records tbody tr td:nth-child(2)", (e) => e.textContent), "bulk-00");
  await page.click("a.pager");
  await page.waitForFunction(() => /page 2 of 2/.test(document.querySelector("#view").textContent));
  assert.equal(await page.$$eval("#records tbody tr", (r) => r.length), 10);
  // A bad filter is the server's 400, shown as such.
  await page.goto(`${srv.url}/_/#records/ai_prompts?filter=${encodeURIComponent("nosuchfield = 1")}`);
  await page.waitForSelector("#view .error");
  // The agent's prompt is a link to the prompt record.
  const agent = (await srv.api("/api/collections/ai_agents/records?filter=" + encodeURIComponent("name='poco'"))).body.items[0];
  await page.goto(`${srv.url}/_/#records/ai_agents/${agent.id}`);
  await page.waitForSelector(`.rels a[href="#records/ai_prompts/${agent.prompt}"]`);
  await page.click(`.rels a[href="#records/ai_prompts/${agent.prompt}"]`);
  await page.waitForFunction((id) => document.querySelector("#record-json")?.textContent.includes(id), {}, agent.prompt);
  // A secret field is masked in the record's JSON.
  const user = (await srv.api("/api/collections/users/records?perPage=1")).body.items[0];
  const key = await srv.api("/api/collections/llm_keys/records", { method: "POST",
    body: { provider_id: "ui-secret", user: user.id, env_vars: { API_KEY: "sk-never-shown" } } });
  assert.equal(key.status, 200, JSON.stringify(key.body));
  await page.goto(`${srv.url}/_/#records/llm_keys/${key.body.id}`);
  // A hash change keeps the previous record on screen until the new one loads.
  await page.waitForFunction((id) => document.querySelector("#record-json")?.textContent.includes(id), {}, key.body.id);
  const json = await page.$eval("#record-json", (e) => e.textContent);
  assert.match(json, /\*\*\*hmac:/);
  assert.ok(!json.includes("sk-never-shown"));
  assert.ok(!(await page.$eval("#edit-form", (e) => e.textContent + [...e.querySelectorAll("input,textarea")].map((i) => i.value).join())).includes("sk-never-shown"));
  assert.deepEqual(page.problems.filter((p) => !/status of 400/.test(p)), []);
  await page.close();
});
