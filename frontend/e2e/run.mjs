// End to end in Debian's Chromium (playwright-core, no downloaded browser)
// against `ecap serve` on a fresh SQLite database and a random port: the
// issue's story, axe-core on every page (desktop and phone), screenshots of
// every page at 1440×900 and 390×844 in light and dark.
//
// ECAP_BIN: the binary (built with the app embedded); CHROME_PATH: chromium;
// SHOTS_DIR: where screenshots go (default ../target/frontend-screenshots).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AxeBuilder } from "@axe-core/playwright";
import { chromium } from "playwright-core";

const root = resolve(new URL("../..", import.meta.url).pathname);
const bin = resolve(process.env.ECAP_BIN ?? join(root, "target/debug/ecap"));
const shots = resolve(process.env.SHOTS_DIR ?? join(root, "target/frontend-screenshots"));
const SETUP = "e2e-setup-token-0123456789";
const PASSWORD = "Secret1!";
const started = Date.now();
const log = (...a) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);

const PNG = [
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
].map((b) => Buffer.from(b, "base64"));

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

const data = mkdtempSync(join(tmpdir(), "ecap-e2e-"));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
// A clean environment: the shared databases and Redis of the machine stay untouched.
const env = { ...process.env };
for (const k of Object.keys(env)) {
  if (/^(DATABASE_URL|.*_DATABASE_URL|REDIS_.*|DB_.*|S3_.*|ECAP_.*)$/.test(k)) delete env[k];
}
const server = spawn(
  bin,
  ["--data-dir", data, "serve", "--port", String(port), "--host", "127.0.0.1"],
  {
    cwd: data,
    env: {
      ...env,
      JWT_SECRET: "e2e-secret-e2e-secret-e2e-secret-42",
      ECAP_SETUP_TOKEN: SETUP,
      AUTH_RATE_LIMIT_MAX_REQUESTS: "10000",
      RATE_LIMIT_MAX_REQUESTS: "100000",
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  },
);
let browser;
const cleanup = async () => {
  await browser?.close().catch(() => undefined);
  server.kill("SIGTERM");
  rmSync(data, { recursive: true, force: true });
};
process.on("uncaughtException", async (e) => {
  console.error(e);
  await cleanup();
  process.exit(1);
});

for (let i = 0; ; i++) {
  try {
    const r = await fetch(`${base}/health`);
    if (r.ok) break;
  } catch {
    /* not yet */
  }
  if (i > 150) throw new Error("ecap did not start");
  await new Promise((r) => setTimeout(r, 100));
}
const index = await (await fetch(`${base}/`)).text();
assert.match(
  index,
  /id="root"/,
  "the binary must embed the built app (npm run build before cargo build)",
);
log("ecap up on", base);

browser = await chromium.launch({
  executablePath: process.env.CHROME_PATH ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
  ],
});
const problems = [];
async function newPage(ctx) {
  const page = await ctx.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text()))
      problems.push(`CSP: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return page;
}
const desktop = { viewport: { width: 1440, height: 900 } };
const see = (page, text, timeout = 10_000) => page.getByText(text).first().waitFor({ timeout });
const heading = (page, name, timeout = 10_000) =>
  page.getByRole("heading", { name }).first().waitFor({ timeout });
const kpi = (page, key) => page.locator(`[data-kpi="${key}"] .kpi-value`).innerText();
const orderRow = (page) => page.locator("tr[data-order]").first();

async function signIn(page, email, admin = false) {
  await page.goto(`${base}/login`);
  if (admin) await page.getByRole("button", { name: "Admin Login" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign In" }).click();
  await page.getByRole("button", { name: "Sign Out" }).waitFor();
}

// 1. The first admin registers (with the setup token).
const adminCtx = await browser.newContext(desktop);
const ap = await newPage(adminCtx);
await ap.goto(base);
await heading(ap, "Welcome back");
await ap.getByRole("button", { name: "Admin Login" }).click();
await ap.getByRole("tab", { name: "First admin" }).click();
await ap.getByLabel("Full name").fill("Ada Admin");
await ap.getByLabel("Email").fill("ada@example.com");
await ap.getByLabel("Password", { exact: true }).fill(PASSWORD);
await ap.getByLabel("Setup token").fill(SETUP);
await ap.getByRole("button", { name: "Create admin" }).click();
await heading(ap, "Dashboard");
const cookies = await adminCtx.cookies();
const session = cookies.find((c) => c.name === "ecap_session");
assert.ok(
  session?.httpOnly && session.sameSite === "Strict",
  "session cookie is HttpOnly, SameSite=Strict",
);
assert.equal(
  await ap.evaluate(() => document.cookie.includes("ecap_session")),
  false,
  "scripts cannot read the session",
);
assert.equal(
  await ap.evaluate(() =>
    Object.keys(localStorage).some((k) => /token/i.test(localStorage.getItem(k) ?? "")),
  ),
  false,
);
log("first admin registered");

// The live dashboard, kept open (period today) while the order moves.
const dash = await newPage(adminCtx);
await dash.goto(`${base}/?period=today`);
await dash.locator('[data-kpi="orders"] .kpi-value').waitFor();
await see(dash, "Live");
assert.equal(await kpi(dash, "orders"), "0");

// 2. A category, and a product with two images.
await ap.goto(`${base}/categories`);
await ap.getByLabel("New category").fill("Kitchen");
await ap.getByRole("button", { name: "Create" }).click();
await ap.getByRole("link", { name: /^Kitchen$/i }).waitFor();
await ap.goto(`${base}/products/new`);
await ap.getByLabel("Name", { exact: true }).fill("Teal Kettle");
await ap.getByLabel("Description").fill("Boils 1.5 l in three minutes.");
await ap.getByLabel("Price (₹)").fill("25.50");
await ap.getByLabel("Stock").fill("10");
await ap.getByLabel("Category").selectOption({ label: "Kitchen" });
await ap.getByRole("button", { name: "Add attribute" }).click();
await ap.getByLabel("Name", { exact: true }).nth(1).fill("capacity");
await ap.getByLabel("Value").fill("1.5 l");
await ap.getByTestId("image-input").setInputFiles([
  { name: "kettle-1.png", mimeType: "image/png", buffer: PNG[0] },
  { name: "kettle-2.png", mimeType: "image/png", buffer: PNG[1] },
]);
await ap.getByRole("button", { name: "Create product" }).click();
await heading(ap, "Teal Kettle");
await ap.getByRole("button", { name: "Image 2" }).waitFor();
await see(ap, "1.5 l");
const productUrl = ap.url();
log("category and product with two images created");

// 3. A customer registers, adds it to the cart, checks out with a new address.
const custCtx = await browser.newContext(desktop);
const cp = await newPage(custCtx);
await cp.goto(`${base}/login`);
await cp.getByRole("tab", { name: "Create Account" }).click();
await cp.getByLabel("Full name").fill("Casey Customer");
await cp.getByLabel("Email").fill("casey@example.com");
await cp.getByLabel("Password", { exact: true }).fill(PASSWORD);
await cp.getByRole("button", { name: "Create Account" }).click();
await heading(cp, "Hello, Casey");
await cp.getByLabel("Search products").fill("Kettle");
await cp.keyboard.press("Enter");
await cp.getByRole("link", { name: "Teal Kettle" }).waitFor();
await cp.getByRole("button", { name: "Add to cart" }).click();
await see(cp, "Added Teal Kettle to the cart");
await cp.goto(`${base}/cart`);
await cp.getByRole("link", { name: "Checkout" }).click();
await heading(cp, "Checkout");
await cp.getByLabel("Street").fill("12 Lake Road");
await cp.getByLabel("City").fill("Pune");
await cp.getByLabel("State").fill("MH");
await cp.getByLabel("PIN code").fill("411001");
await cp.getByLabel("Phone").fill("+91 98765 43210");
await cp.getByLabel("UPI").check();
// A double-clicked "Place order" places one order.
await cp.getByRole("button", { name: "Place order" }).dblclick();
await heading(cp, "Order placed");
await see(cp, "Order #1");
const mine = await cp.evaluate(() => fetch("/api/orders").then((r) => r.json()));
assert.equal(mine.data.pagination.total, 1, "one order for a double click");
log("customer checked out: one order");

// The dashboard follows without a reload.
await dash.waitForFunction(
  () => document.querySelector('[data-kpi="orders"] .kpi-value')?.textContent === "1",
  null,
  { timeout: 10_000 },
);
log("dashboard KPI moved live");

// 4. The admin ships (tracking) and delivers.
await ap.goto(`${base}/orders`);
const row = orderRow(ap);
await row.getByRole("button", { name: "Start processing" }).click();
await row.locator(".badge").getByText("Processing").waitFor();
await row.getByRole("button", { name: "Ship" }).click();
await ap.getByLabel("Tracking number").fill("BD123456789IN");
await ap.getByLabel("Courier").selectOption("Blue Dart");
await ap.getByRole("button", { name: "Mark shipped" }).click();
await row.getByText("BD123456789IN").waitFor();
await row.getByRole("button", { name: "Out for delivery" }).click();
await row.getByRole("button", { name: "Mark delivered" }).click();
await row.locator(".badge").getByText("Delivered").waitFor();
log("shipped and delivered");

// 5. The customer sees the timeline, reviews, asks for a return.
await cp.goto(`${base}/my-orders`);
await cp.getByRole("button", { name: "Track" }).click();
await cp.getByLabel("Timeline").getByText("Delivered").waitFor();
await see(cp, "BD123456789IN");
await cp.getByRole("button", { name: "Review" }).click();
await cp.getByLabel("Comment").fill("Fast and quiet.");
await cp.getByRole("button", { name: "Submit review" }).click();
await see(cp, "Thanks for your review");
await cp.getByRole("button", { name: /^Return/ }).click();
await cp.getByLabel("Reason").selectOption("Damaged / Defective");
await cp.getByRole("button", { name: "Request return" }).click();
await cp.locator(".order-card .badge").getByText("Cancellation requested").waitFor();
log("timeline seen, review written, return requested");

// 6. The admin approves and refunds.
await ap.goto(`${base}/orders`);
await orderRow(ap).getByRole("button", { name: "Approve" }).click();
await orderRow(ap).getByRole("button", { name: "Start refund" }).click();
await orderRow(ap).getByRole("button", { name: "Mark refunded" }).click();
await orderRow(ap).locator(".badge").getByText("Refunded").waitFor();
// Net revenue falls back to nothing once refunded, without a reload.
await dash.waitForFunction(
  () =>
    /^₹?0\.00$|₹0\.00/.test(
      document.querySelector('[data-kpi="netRevenue"] .kpi-value')?.textContent ?? "",
    ),
  null,
  { timeout: 10_000 },
);
await ap.goto(productUrl);
await see(ap, "Fast and quiet.");
log("return approved and refunded; review on the product page");

// 7. A customer cannot reach admin pages, by link or typed URL.
assert.equal(await cp.getByRole("link", { name: "All Orders" }).count(), 0);
for (const path of ["/orders", "/admin"]) {
  await cp.goto(`${base}${path}`);
  await heading(cp, "Not available");
}
const refused = await cp.evaluate(() => fetch("/api/users").then((r) => r.status));
assert.equal(refused, 403);

// 8. Signing out in one tab signs out the other.
const cp2 = await newPage(custCtx);
await cp2.goto(`${base}/my-orders`);
await heading(cp2, "My Orders");
await cp.getByRole("button", { name: "Sign Out" }).click();
await heading(cp, "Welcome back");
await heading(cp2, "Welcome back");
assert.equal(await cp2.evaluate(() => fetch("/api/auth/me").then((r) => r.status)), 401);
log("customer blocked from admin pages; sign-out reached the other tab");

// 9. Every page: axe (desktop and phone, 0 serious/critical) and screenshots
// (1440×900 and 390×844, light and dark).
mkdirSync(shots, { recursive: true });
await signIn(cp, "casey@example.com");
const productPath = new URL(productUrl).pathname;
const pages = [
  ["admin", "dashboard", "/?period=today"],
  ["admin", "products", "/products"],
  ["admin", "products-table", "/products?view=table"],
  ["admin", "product", productPath],
  ["admin", "product-edit", `${productPath}/edit`],
  ["admin", "product-new", "/products/new"],
  ["admin", "orders", "/orders"],
  ["admin", "users", "/admin"],
  ["admin", "categories", "/categories"],
  ["admin", "profile", "/profile"],
  ["customer", "home", "/"],
  ["customer", "shop", "/products"],
  ["customer", "product", productPath],
  ["customer", "my-orders", "/my-orders"],
  ["customer", "cart", "/cart"],
  ["customer", "categories", "/categories"],
  ["customer", "profile", "/profile"],
  ["customer", "not-found", "/no-such-page"],
  ["anonymous", "login", "/login"],
];
const anonCtx = await browser.newContext(desktop);
const anon = await newPage(anonCtx);
const byRole = { admin: ap, customer: cp, anonymous: anon };
const violations = [];
let taken = 0;
const bad = (list) => list.filter((x) => x.impact === "serious" || x.impact === "critical");
const where = (v) =>
  v.nodes
    .slice(0, 3)
    .map((n) => n.target.join(" "))
    .join(" | ");
for (const [role, name, path] of pages) {
  const page = byRole[role];
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.emulateMedia({ colorScheme: "light" });
  await page.goto(`${base}${path}`);
  await page.locator("h1").first().waitFor();
  await page
    .waitForFunction(() => !document.querySelector(".skeleton, .boot"), null, { timeout: 10_000 })
    .catch(() => undefined);
  // One load per page: the phone width is the same page re-laid out.
  for (const [vp, size] of [
    ["desktop", { width: 1440, height: 900 }],
    ["phone", { width: 390, height: 844 }],
  ]) {
    await page.setViewportSize(size);
    await page.emulateMedia({ colorScheme: "light" });
    const axe = await new AxeBuilder({ page })
      .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
      .analyze();
    for (const v of bad(axe.violations))
      violations.push(`${role}/${name} ${vp}: ${v.id} (${v.impact}) ${where(v)}`);
    await page.screenshot({ path: join(shots, `${role}-${name}-${vp}-light.png`) });
    await page.emulateMedia({ colorScheme: "dark" });
    // Contrast in dark is the same at both widths: checked once, on desktop.
    if (vp === "desktop") {
      const dark = await new AxeBuilder({ page }).withRules(["color-contrast"]).analyze();
      for (const v of bad(dark.violations))
        violations.push(`${role}/${name} dark: ${v.id} ${where(v)}`);
    }
    await page.screenshot({ path: join(shots, `${role}-${name}-${vp}-dark.png`) });
    taken += 2;
  }
}
log(`axe on ${pages.length} pages × 2 widths; ${taken} screenshots in ${shots}`);

await cleanup();
if (violations.length) {
  console.error(`axe: ${violations.length} serious/critical violations:\n${violations.join("\n")}`);
}
if (problems.length) console.error(`browser problems:\n${problems.join("\n")}`);
if (violations.length || problems.length) process.exit(1);
log("end-to-end passed");
