// The browser app's budget (issue 11), figures for BENCHMARKS.md:
//  1. JavaScript + CSS the login page and app shell load, gzipped (≤ 150 KB);
//     charts and pages are lazy chunks, listed too.
//  2. On a database seeded with `ecap seed --products 10000` and
//     `ecap seed --orders N` (BENCH_ORDERS, default 1,000,000): the dashboard's
//     KPI cards visible after a cold navigation (performance mark
//     `ecap:kpis-visible`), and the products page (`ecap:products-visible`),
//     median of 5 in headless Chromium (≤ 1 s each).
//  3. Lighthouse 12.2.3 (desktop preset) on the dashboard, the products page
//     and a product page: performance, accessibility, best practices.
//
// Usage: (cd frontend && npm ci && npm run build) && cargo build --release -p ecap
//        (cd bench/frontend && npm ci) && node bench/frontend.mjs
// Env: ECAP_BIN (default target/release/ecap), CHROME_PATH (/usr/bin/chromium),
//      BENCH_ORDERS, BENCH_DATA (reuse a seeded data dir).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

const root = resolve(new URL("..", import.meta.url).pathname);
const require = createRequire(join(root, "frontend/package.json"));
const { chromium } = require("playwright-core");
const bin = resolve(process.env.ECAP_BIN ?? join(root, "target/release/ecap"));
const chrome = process.env.CHROME_PATH ?? "/usr/bin/chromium";
const orders = Number(process.env.BENCH_ORDERS ?? 1_000_000);
const out = {};

// 1. Bundle sizes.
const dist = join(root, "frontend/dist");
const html = readFileSync(join(dist, "index.html"), "utf8");
const initial = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
const gz = (f) => gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
const initialGz = initial.reduce((n, f) => n + gz(f), 0) + gzipSync(html).length;
const lazy = execFileSync("ls", [join(dist, "assets")], { encoding: "utf8" })
  .split("\n")
  .filter((f) => /\.js$/.test(f) && !initial.includes(`assets/${f}`))
  .map((f) => [f.replace(/-[\w-]{8}\.js$/, ""), gz(`assets/${f}`)])
  .sort((a, b) => b[1] - a[1]);
out.bundle = { initialFiles: initial, initialGzipKB: +(initialGz / 1024).toFixed(1), lazyGzipKB: Object.fromEntries(lazy.map(([n, b]) => [n, +(b / 1024).toFixed(1)])) };
console.log(`login page + shell: ${out.bundle.initialGzipKB} KB gzipped (${initial.join(", ")})`);

// 2. A seeded database and the server.
const data = process.env.BENCH_DATA ?? mkdtempSync(join(tmpdir(), "ecap-bench-fe-"));
const env = { ...process.env, JWT_SECRET: "bench-secret-bench-secret-bench-secret", LOG_LEVEL: "warn" };
for (const k of Object.keys(env)) if (/^(DATABASE_URL|.*_DATABASE_URL|REDIS_.*|DB_.*|S3_.*)$/.test(k)) delete env[k];
if (!existsSync(join(data, "seeded"))) {
  let t = Date.now();
  execFileSync(bin, ["--data-dir", data, "seed", "--products", "10000"], { env, stdio: "inherit" });
  console.log(`seeded 10,000 products in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  t = Date.now();
  execFileSync(bin, ["--data-dir", data, "seed", "--orders", String(orders)], { env, stdio: "inherit" });
  console.log(`seeded ${orders} orders in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  execFileSync("touch", [join(data, "seeded")]);
}
out.orders = orders;
out.dbMB = +(statSync(join(data, "ecap.db")).size / 1e6).toFixed(0);
const port = await new Promise((res) => {
  const s = createServer();
  s.listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});
const base = `http://127.0.0.1:${port}`;
const server = spawn(bin, ["--data-dir", data, "serve", "--port", String(port), "--host", "127.0.0.1"], {
  env: { ...env, RATE_LIMIT_MAX_REQUESTS: "1000000", AUTH_RATE_LIMIT_MAX_REQUESTS: "10000" },
  stdio: ["ignore", "ignore", "inherit"],
});
for (let i = 0; i < 600; i++) {
  try {
    if ((await fetch(`${base}/ready`)).ok) break;
  } catch {
    /* starting */
  }
  await new Promise((r) => setTimeout(r, 100));
}

const login = await fetch(`${base}/api/auth/login`, {
  method: "POST",
  headers: { "content-type": "application/json", "x-auth-session": "cookie" },
  body: JSON.stringify({ email: "admin@demo.ecap.local", password: "Admin123!" }),
});
const cookie = login.headers
  .getSetCookie()
  .map((c) => c.split(";")[0])
  .join("; ");
const session = cookie.match(/ecap_session=([^;]+)/)?.[1];
if (!session) throw new Error(`login failed: ${login.status}`);
const aProduct = (await (await fetch(`${base}/api/products?limit=1`)).json()).data.products[0].id;

const browser = await chromium.launch({
  executablePath: chrome,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
await ctx.addCookies([{ name: "ecap_session", value: session, url: base, httpOnly: true, sameSite: "Strict" }]);
const page = await ctx.newPage();
async function markAfterNavigation(path, mark) {
  const times = [];
  for (let i = 0; i < 6; i++) {
    await page.goto("about:blank");
    await page.goto(`${base}${path}`);
    await page.waitForFunction((m) => performance.getEntriesByName(m).length > 0, mark, { timeout: 30_000 });
    const t = await page.evaluate((m) => performance.getEntriesByName(m)[0].startTime, mark);
    if (i > 0) times.push(t); // the first load warms the caches
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(times.length / 2)]);
}
out.kpisVisibleMs = await markAfterNavigation("/?period=30d", "ecap:kpis-visible");
out.productsVisibleMs = await markAfterNavigation("/products", "ecap:products-visible");
console.log(`dashboard KPIs visible: ${out.kpisVisibleMs} ms; products page: ${out.productsVisibleMs} ms (median of 5)`);
await browser.close();

// 3. Lighthouse.
const lhBin = join(root, "bench/frontend/node_modules/.bin/lighthouse");
out.lighthouse = {};
if (existsSync(lhBin)) {
  for (const [name, path] of [
    ["dashboard", "/?period=30d"],
    ["products", "/products"],
    ["product page", `/products/${aProduct}`],
  ]) {
    const json = execFileSync(
      lhBin,
      [
        `${base}${path}`,
        "--preset=desktop",
        "--output=json",
        "--quiet",
        "--only-categories=performance,accessibility,best-practices",
        `--extra-headers=${JSON.stringify({ Cookie: `ecap_session=${session}` })}`,
        "--chrome-flags=--headless --no-sandbox --disable-gpu --disable-background-networking",
      ],
      { env: { ...process.env, CHROME_PATH: chrome }, encoding: "utf8", maxBuffer: 256 << 20 },
    );
    const r = JSON.parse(json);
    const score = (k) => Math.round((r.categories[k]?.score ?? 0) * 100);
    out.lighthouse[name] = {
      performance: score("performance"),
      accessibility: score("accessibility"),
      bestPractices: score("best-practices"),
      lcpMs: Math.round(r.audits["largest-contentful-paint"]?.numericValue ?? 0),
      cls: +(r.audits["cumulative-layout-shift"]?.numericValue ?? 0).toFixed(3),
    };
    console.log(`lighthouse ${name}:`, out.lighthouse[name]);
  }
} else {
  console.log("lighthouse not installed: (cd bench/frontend && npm ci)");
}
server.kill("SIGTERM");
console.log(JSON.stringify(out, null, 2));
