// bench.mjs - figures for the status page (tests/bench/bench_ui.sh runs
// it): page load (first contentful paint and bytes transferred, from
// Chromium's performance API, fresh browser context each round) for the
// sign-in page and for the signed-in overview, and the delay from API
// writes to the DOM with BURST records changing at once (16 writers),
// with the longest gap between animation frames meanwhile. Figures, not
// pass/fail.
import { startServer, openBrowser, newPage, signIn, SU } from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_UI_ROUNDS || 5);
const BURST = Number(process.env.BENCH_UI_BURST || 1000);
const WRITERS = 16; // the loopback address shares --max-conns-per-ip (64) with the browser
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function loadFigures() {
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  return {
    fcp: fcp ? fcp.startTime : NaN,
    bytes: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0),
    decoded: nav.decodedBodySize + res.reduce((n, r) => n + r.decodedBodySize, 0),
    requests: 1 + res.length,
  };
}

const srv = await startServer();
const browser = await openBrowser();
try {
  const cold = [], signed = [];
  for (let i = 0; i < ROUNDS; i++) {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${srv.url}/_/`, { waitUntil: "networkidle0" });
    cold.push(await page.evaluate(loadFigures));
    await signIn(page, srv.url, SU);
    await page.waitForSelector("#reconcilers tbody tr");
    await page.reload({ waitUntil: "load" }); // signed in, warm cache: revalidated
    await page.waitForSelector("#reconcilers tbody tr");
    signed.push(await page.evaluate(loadFigures));
    await ctx.close();
  }
  const show = (name, a) =>
    console.log(`${name}: FCP median ${med(a.map((x) => x.fcp)).toFixed(0)} ms (min ${Math.min(...a.map((x) => x.fcp)).toFixed(0)}), ` +
      `${med(a.map((x) => x.bytes))} bytes transferred in ${a[0].requests} requests (${med(a.map((x) => x.decoded))} bytes decoded)`);
  show("sign-in page, cold cache", cold);
  show("overview, signed in, reload (304s)", signed);

  // The burst: BURST healthchecks created, then all updated at once.
  const ids = [];
  for (let i = 0; i < BURST; i += WRITERS) {
    const rs = await Promise.all(Array.from({ length: Math.min(WRITERS, BURST - i) }, (_, j) =>
      srv.api("/api/collections/healthchecks/records", { method: "POST", body: { name: `bench-${i + j}`, status: "starting" } })));
    for (const r of rs) ids.push(r.body.id);
  }
  for (const view of ["overview", "timeline"]) {
    const page = await newPage(browser);
    await signIn(page, srv.url, SU);
    await page.waitForSelector('#live[data-state="live"]');
    await page.goto(`${srv.url}/_/#${view}`);
    await new Promise((r) => setTimeout(r, 1000));
    const base = Number(await page.$eval("#head-top", (e) => e.dataset.changes));
    await page.evaluate((want) => {
      window.__bench = { gap: 0, done: 0 };
      let last = performance.now();
      const tick = (t) => {
        window.__bench.gap = Math.max(window.__bench.gap, t - last);
        last = t;
        if (!window.__bench.done) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      const el = document.getElementById("head-top");
      new MutationObserver(() => {
        if (!window.__bench.done && Number(el.dataset.changes) >= want) window.__bench.done = Date.now();
      }).observe(el, { attributes: true });
    }, base + BURST);
    const status = view === "overview" ? "ready" : "degraded";
    const t0 = Date.now();
    let lastAck = 0;
    let next = 0;
    await Promise.all(Array.from({ length: WRITERS }, async () => {
      while (next < ids.length) {
        const id = ids[next++];
        const r = await srv.api(`/api/collections/healthchecks/records/${id}`, { method: "PATCH", body: { status } });
        if (r.status !== 200) throw new Error(JSON.stringify(r.body));
        lastAck = Math.max(lastAck, Date.now());
      }
    }));
    await page.waitForFunction(() => window.__bench.done, { timeout: 60000 });
    const b = await page.evaluate(() => window.__bench);
    console.log(`${BURST} changes in a burst, ${view} open: writes took ${lastAck - t0} ms; ` +
      `last write acknowledged -> DOM ${b.done - lastAck} ms; first write -> all in the DOM ${b.done - t0} ms; ` +
      `longest gap between frames ${b.gap.toFixed(0)} ms`);
    await page.close();
  }
} finally {
  await browser.close();
  await srv.cleanup();
}
