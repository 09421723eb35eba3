// containers.test.mjs - the status page with a real container engine
// (`make test-containers` runs it with tests/engine/podman.sh's engine in
// UI_DOCKER_HOST and its mounted root in UI_ROOT; skipped without them):
// a container stopped behind pocketctl's back shows its restart, in the
// overview and on the timeline, without a reload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { startServer, openBrowser, newPage, signIn, SU, ARTIFACTS } from "./lib.mjs";

const engine = process.env.UI_DOCKER_HOST;
const sock = engine?.replace(/^unix:\/\//, "");
let srv, browser;

before(async () => {
  if (!engine) return;
  srv = await startServer();
  browser = await openBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.cleanup();
});

// One Docker Engine API call on the engine's unix socket.
async function docker(method, p) {
  const http = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method, path: `/v1.41${p}` }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end();
  });
}

test("a stopped container shows its restart", { skip: !engine && "needs UI_DOCKER_HOST (make test-containers)" }, async () => {
  const page = await newPage(browser);
  await signIn(page, srv.url, SU);
  const row = '#containers tr[data-container="pocketcoder-mcp-gateway"]';
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.includes("Ready"), { timeout: 60000 }, row);
  await page.goto(`${srv.url}/_/#timeline`);
  await page.waitForSelector(".chart svg");
  assert.ok([204, 304].includes(await docker("POST", "/containers/pocketcoder-mcp-gateway/stop?t=2")));
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#events li")].some((li) =>
      li.textContent.includes("pocketcoder-mcp-gateway") && /start Succeeded/.test(li.textContent)),
  { timeout: 30000 });
  await page.goto(`${srv.url}/_/#overview`);
  await page.waitForFunction((sel) => /start Succeeded/.test(document.querySelector(sel)?.textContent || ""), { timeout: 10000 }, row);
  await page.screenshot({ path: path.join(ARTIFACTS, "containers-desktop.png"), fullPage: true });
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("the Restart button restarts a container and shows the outcome", { skip: !engine && "needs UI_DOCKER_HOST (make test-containers)" }, async () => {
  const page = await newPage(browser);
  await signIn(page, srv.url, SU);
  const row = '#containers tr[data-container="pocketcoder-opencode"]';
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.includes("Ready"), { timeout: 60000 }, row);
  await page.click(`${row} button[data-restart]`);
  await page.waitForFunction(() => /restart of pocketcoder-opencode: Succeeded/.test(document.querySelector("#action-result").textContent),
    { timeout: 60000 });
  assert.deepEqual(page.problems, []);
  await page.close();
});
