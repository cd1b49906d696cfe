import { Browser, expect, Page, test } from "@playwright/test";
import * as http from "node:http";

// Embeddable panels, framed by a test portal this file serves itself on loopback, reached as two
// origins: `http://localhost:PORT` is in the console's `frame_ancestors` allow-list (see
// playwright.config.ts), `http://127.0.0.1:PORT` is not.
const port = Number(process.env.PITWALL_E2E_PORTAL_PORT);
const ALLOWED = `http://localhost:${port}`;
const OTHER = `http://127.0.0.1:${port}`;

let portal: http.Server;

test.beforeAll(async () => {
  portal = http.createServer((req, res) => {
    const src = new URL(req.url ?? "/", "http://portal").searchParams.get("src") ?? "";
    const attr = src.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><title>Portal</title><iframe title="Pitwall panel" src="${attr}" width="900" height="420"></iframe>`);
  });
  await new Promise<void>((done) => portal.listen(port, done));
});

test.afterAll(() => new Promise<void>((done) => portal.close(() => done())));

/** Mints a token on the Embeds page and returns the embed address it shows (once). */
async function mint(page: Page, label: string, panel: string, lifetime: string): Promise<string> {
  await page.goto("/embeds");
  await page.locator("body[data-hydrated]").waitFor();
  const form = page.getByRole("region", { name: "Mint an embed token" });
  await form.getByLabel("Label").fill(label);
  await form.getByLabel("Panel").selectOption(panel);
  await form.getByLabel("Lifetime").fill(lifetime);
  await form.getByRole("button", { name: "Mint token" }).click();
  const address = form.getByLabel("Embed address");
  await expect(address).toHaveValue(new RegExp(`^/embed/${panel}\\?token=pwe1\\.`));
  return address.inputValue();
}

/** A browser of the portal's visitors: no Pitwall session, so only the token opens panels. */
function visitor(browser: Browser) {
  return browser.newContext({ storageState: { cookies: [], origins: [] } });
}

/** The portal page framing `src`. */
function portalPage(origin: string, src: string) {
  return `${origin}/?src=${encodeURIComponent(src)}`;
}

test("an embed URL renders in an iframe on an allowed origin, is refused on another, and stops when revoked", async ({
  page,
  browser,
  baseURL,
}) => {
  const label = `portal ${Date.now() % 100000}`;
  const address = await mint(page, label, "host/cpu", "1h");
  const tokens = page.getByRole("table", { name: "Embed tokens" });
  const row = tokens.getByRole("row").filter({ hasText: label });
  await expect(row.getByRole("cell", { name: "active" })).toBeVisible();

  const src = `${baseURL}${address}&theme=dark&from=now-15m&refresh=2s`;
  const context = await visitor(browser);
  const tab = await context.newPage();
  await tab.goto(portalPage(ALLOWED, src));
  const frame = tab.frameLocator('iframe[title="Pitwall panel"]');
  await expect(frame.getByRole("heading", { level: 1, name: "CPU" })).toBeVisible();
  await expect(frame.getByRole("navigation")).toHaveCount(0);
  await expect(frame.locator("body[data-hydrated]")).toHaveCount(1);
  // ECharts drew the series into the panel, in the dark theme asked for.
  await expect(frame.locator("#embed-host-cpu canvas")).toBeVisible();
  await expect(frame.locator(".embed.theme-dark")).toHaveCount(1);
  // `refresh=2s`: the range moves on without a reload.
  const range = frame.locator(".range");
  const first = await range.textContent();
  await expect(range).not.toHaveText(first ?? "", { timeout: 10_000 });

  // Another origin: the browser refuses to frame the panel (CSP frame-ancestors).
  const other = await context.newPage();
  const response = await other.request.get(src);
  expect(response.headers()["content-security-policy"]).toContain(`frame-ancestors ${ALLOWED}`);
  await other.goto(portalPage(OTHER, src));
  await expect
    .poll(() => other.frames().some((f) => f.url().startsWith("chrome-error://")), { timeout: 10_000 })
    .toBe(true);
  await expect(other.frameLocator('iframe[title="Pitwall panel"]').getByRole("heading")).toHaveCount(0);

  // Revoked: the framed panel says so at its next refresh.
  await row.getByRole("button", { name: /^Revoke token / }).click();
  await expect(row.getByRole("cell", { name: "revoked" })).toBeVisible();
  await expect(frame.getByRole("alert")).toContainText("the embed token was revoked at");
  await context.close();
});

test("an expired embed token, or one for another panel, is refused", async ({ page, browser, baseURL }) => {
  const address = await mint(page, "short-lived", "host/memory", "10s");
  const context = await visitor(browser);
  const tab = await context.newPage();
  let response = await tab.goto(`${baseURL}${address}`);
  expect(response?.status()).toBe(200);
  await expect(tab.getByRole("heading", { level: 1, name: "Memory" })).toBeVisible();

  response = await tab.goto(`${baseURL}${address.replace("/host/memory", "/host/cpu")}`);
  expect(response?.status()).toBe(401);
  await expect(tab.getByRole("alert")).toHaveText("Refused: the embed token opens host/memory only.");

  await expect
    .poll(async () => (await tab.goto(`${baseURL}${address}`))?.status(), { timeout: 20_000, intervals: [1_000] })
    .toBe(401);
  await expect(tab.getByRole("alert")).toContainText("Refused: the embed token expired at");
  await expect(tab.getByRole("heading", { level: 1, name: "Memory" })).toHaveCount(0);

  // Without a token (and without a session) nothing shows either.
  response = await tab.goto(`${baseURL}/embed/host/cpu`);
  expect(response?.status()).toBe(401);
  await context.close();
});
