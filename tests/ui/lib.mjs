// lib.mjs - the kit of the browser tests: a real `pocketctl serve` on a
// free loopback port with a temporary data directory (a superuser, an
// admin user and a plain user), Debian's Chromium started headless by
// puppeteer-core, and small helpers to sign in and to call the API.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";

export const SU = { email: "ui-admin@example.com", password: "ui-admin-pass-123" };
export const ADMIN = { email: "ui-human@example.com", password: "ui-human-pass-123", as: "admin" };
export const PLAIN = { email: "ui-plain@example.com", password: "ui-plain-pass-123", as: "admin" };
export const ARTIFACTS = path.join(path.dirname(new URL(import.meta.url).pathname), "artifacts");
const MANIFESTS = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../manifests");

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Start the server; resolves {url, root, data, stop(), restart(), api()}.
export async function startServer() {
  const pctl = process.env.PCTL;
  if (!pctl) throw new Error("set PCTL to the pocketctl binary");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pocketctl-ui."));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // UI_DOCKER_HOST / UI_ROOT: a real engine (the container tests'
  // tests/engine/podman.sh) and the root its containers mount.
  const root = process.env.UI_ROOT || path.join(tmp, "root");
  const docker = process.env.UI_DOCKER_HOST || `unix://${tmp}/no-engine.sock`;
  const srv = { url, tmp, root, data: path.join(tmp, "data"), proc: null, log: path.join(tmp, "server.log") };
  srv.start = async () => {
    const out = fs.openSync(srv.log, "a");
    srv.proc = spawn(pctl, ["--data", srv.data, "serve", "--listen", `127.0.0.1:${port}`, "--root", srv.root,
      "--manifests", MANIFESTS], {
      stdio: ["ignore", out, out],
      env: {
        ...process.env,
        POCKETCTL_ADMIN_EMAIL: SU.email, POCKETCTL_ADMIN_PASSWORD: SU.password,
        POCKETCTL_USER_EMAIL: ADMIN.email, POCKETCTL_USER_PASSWORD: ADMIN.password,
        DOCKER_HOST: docker,
      },
    });
    for (let i = 0; i < 400; i++) {
      try {
        if ((await fetch(`${url}/api/health`)).ok) return;
      } catch {}
      if (srv.proc.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`the server did not start:\n${fs.readFileSync(srv.log, "utf8")}`);
  };
  srv.stop = async () => {
    if (!srv.proc || srv.proc.exitCode !== null) return;
    const done = new Promise((r) => srv.proc.once("exit", r));
    srv.proc.kill("SIGTERM");
    await done;
  };
  srv.cleanup = async () => {
    await srv.stop();
    const log = fs.existsSync(srv.log) ? fs.readFileSync(srv.log, "utf8") : "";
    fs.rmSync(tmp, { recursive: true, force: true });
    if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(log)) {
      throw new Error(`the server reported a sanitizer error:\n${log}`);
    }
  };
  await srv.start();
  srv.token = await login(url, "_superusers", SU);
  srv.api = (p, opts = {}) => apiCall(url, srv.token, p, opts);
  const r = await srv.api("/api/collections/users/records", {
    method: "POST",
    body: { email: PLAIN.email, password: PLAIN.password, passwordConfirm: PLAIN.password, role: "user", verified: true },
  });
  if (r.status !== 200) throw new Error(`cannot create the plain user: ${JSON.stringify(r.body)}`);
  return srv;
}

export async function login(url, coll, who) {
  const r = await apiCall(url, null, `/api/collections/${coll}/auth-with-password`, {
    method: "POST",
    body: { identity: who.email, password: who.password },
  });
  if (r.status !== 200) throw new Error(`login ${who.email}: ${JSON.stringify(r.body)}`);
  return r.body.token;
}

export async function apiCall(url, token, p, { method = "GET", body } = {}) {
  const headers = {};
  if (token) headers.Authorization = token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, body: json, headers: res.headers, text };
}

// Chromium, headless; every console error and page error is collected
// in page.problems, every dialog (alert from injected markup) in
// page.dialogs (and dismissed).
export async function openBrowser() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
}

export async function newPage(browser, width = 1280, height = 900) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  page.problems = [];
  page.dialogs = [];
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on("dialog", async (d) => {
    page.dialogs.push(d.message());
    await d.dismiss();
  });
  return page;
}

export async function signIn(page, url, who, as = who.as || "superuser") {
  await page.goto(`${url}/_/`, { waitUntil: "load" });
  await page.waitForSelector("#signin-form", { visible: true });
  await page.click(`input[name="as"][value="${as}"]`);
  await page.type("#email", who.email);
  await page.type("#password", who.password);
  await page.click("#signin-form button");
}

export const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
