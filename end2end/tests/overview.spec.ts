import { expect, test } from "@playwright/test";
import { ADMIN_STATE } from "../constants";
import { failOnCspViolations } from "./helpers";

const targets = [
  { name: "app-db", kind: "PostgreSQL" },
  { name: "cache", kind: "Redis" },
  { name: "tasks", kind: "Celery broker" },
];

test.beforeEach(async ({ page }) => {
  failOnCspViolations(page);
  await page.goto("/");
  await page.locator("body[data-hydrated]").waitFor();
});

test("overview shows every demo target up with its version", async ({ page }) => {
  await expect(page).toHaveTitle("Overview · Pitwall");
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  const table = page.getByRole("table", { name: "Targets" });
  for (const t of targets) {
    const row = table.getByRole("row").filter({ has: page.getByRole("rowheader", { name: t.name }) });
    await expect(row).toBeVisible();
    await expect(row.getByRole("cell", { name: t.kind, exact: true })).toBeVisible();
    await expect(row.getByText("up", { exact: true })).toBeVisible();
    // A version such as 15.19 or 7.0.15, read from the server.
    await expect(row.getByRole("cell").nth(3)).toHaveText(/^\d+\.\d+/);
  }
  // Addresses are shown redacted: host:port/db, never a scheme or credentials.
  await expect(table).not.toContainText("postgres://");
  await expect(table).toContainText(/127\.0\.0\.1:\d+\/shop/);
});

test("navigation reaches every page without a reload", async ({ page }) => {
  const nav = page.getByRole("navigation", { name: "Main" });
  await page.evaluate(() => ((window as any).__sameDocument = true));
  for (const name of ["Cache", "Queries", "Tables", "Queues", "Resources", "Jobs", "Alerts", "Embeds", "Users", "Audit", "Overview"]) {
    await nav.getByRole("link", { name }).click();
    await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
    await expect(nav.getByRole("link", { name })).toHaveAttribute("aria-current", "page");
    await expect(page).toHaveTitle(`${name} · Pitwall`);
  }
  // Client-side routing: the document (and the marker set on it) survived every click.
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});

test("unknown paths answer 404 with a way back", async ({ page }) => {
  const response = await page.goto("/no-such-page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Not found" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Go to the overview" })).toBeVisible();
});

test("assets are hashed, compressed and cached for a year; HTML is not cached", async ({ page, request }) => {
  const html = await request.get("/", { headers: { "Accept-Encoding": "br, gzip" } });
  expect(html.headers()["cache-control"]).toBe("no-cache");
  expect(html.headers()["content-encoding"]).toBe("br");
  const body = await html.text();
  const wasm = body.match(/\/pkg\/pitwall\.[A-Za-z0-9_-]+\.wasm/)?.[0];
  const css = body.match(/\/pkg\/pitwall\.[A-Za-z0-9_-]+\.css/)?.[0];
  expect(wasm, "hashed wasm name in the page").toBeTruthy();
  expect(css, "hashed stylesheet in the page").toBeTruthy();
  for (const asset of [wasm!, css!]) {
    const r = await request.get(asset, { headers: { "Accept-Encoding": "br, gzip" } });
    expect(r.status()).toBe(200);
    expect(r.headers()["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(["br", "gzip"]).toContain(r.headers()["content-encoding"]);
  }
});

test("an admin can check every target now", async ({ page }) => {
  const checkNow = page.getByRole("button", { name: "Check now" });
  await expect(checkNow).toBeEnabled();
  await checkNow.click();
  await expect(page.getByRole("alert")).toHaveCount(0);
  await expect(page.getByRole("table", { name: "Targets" }).getByText("up", { exact: true })).toHaveCount(3);
});

test("headline figures update live without a reload", async ({ page }) => {
  const figures = page.getByRole("region", { name: "Headline figures" });
  for (const title of ["Cache hit rate", "Query p95", "Queue depth", "CPU", "Memory"]) {
    await expect(figures.getByRole("heading", { name: new RegExp(`^${title} · `) })).toBeVisible();
  }
  await expect(figures.getByRole("link", { name: "Cache hit rate" })).toHaveAttribute("href", "/cache");
  await page.evaluate(() => ((window as any).__sameDocument = true));
  const line = figures.getByRole("img", { name: "CPU over the last 15 minutes" }).locator("polyline");
  const before = await line.getAttribute("points");
  await expect.poll(() => line.getAttribute("points"), { timeout: 10_000 }).not.toBe(before);
  await expect(figures.getByText(/^\d+\.\d %$/).first()).toBeVisible();
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});

test("the resources page shows the machine and the console live", async ({ page }) => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Resources" }).click();
  const host = page.getByRole("region", { name: "Host figures" });
  for (const title of ["CPU", "Memory", "Swap", "Load (1 min)", "Disk space", "Disk writes", "Network in"]) {
    await expect(host.getByRole("heading", { name: `${title} · host`, exact: true })).toBeVisible();
  }
  const own = page.getByRole("region", { name: "Console figures" });
  await expect(own.getByText(/^\d+\.\d MiB$/)).toBeVisible();
  await expect(page.getByRole("region", { name: "Recommendations" })).toContainText(/threshold/);
  // Connections per target endpoint; the cache and the broker share one Redis.
  const connections = page.getByRole("table", { name: "Connections to targets" });
  await expect(connections.getByRole("row").filter({ hasText: "app-db" }).getByRole("cell").last()).toHaveText(
    /^[1-9]\d*$/,
  );
  await expect(connections.getByRole("row").filter({ hasText: "cache, tasks" })).toHaveCount(1);
  const line = host.getByRole("img", { name: "Memory over the last 15 minutes" }).locator("polyline");
  const before = await line.getAttribute("points");
  await expect.poll(() => line.getAttribute("points"), { timeout: 10_000 }).not.toBe(before);
});

test("history charts draw with ECharts and follow the range picker", async ({ page }) => {
  await page.goto("/resources");
  await page.locator("body[data-hydrated]").waitFor();
  const history = page.getByRole("region", { name: "History" });
  await expect(history.locator("#chart-host-cpu_pct canvas")).toHaveCount(1);
  await expect(history.getByRole("img", { name: /^CPU: / })).toBeVisible();
  // Both charts are in percent: each says which it is.
  await expect(history.getByRole("figure", { name: "CPU" }).getByText("CPU", { exact: true })).toBeVisible();
  await expect(history.getByRole("figure", { name: "Memory" }).getByText("Memory", { exact: true })).toBeVisible();
  const ranges = history.getByRole("navigation", { name: "Time range" });
  await expect(ranges.getByRole("link", { name: "Live" })).toHaveAttribute("aria-current", "page");
  await ranges.getByRole("link", { name: "1 hour" }).click();
  await expect(page).toHaveURL(/\?range=1h$/);
  await expect(ranges.getByRole("link", { name: "1 hour" })).toHaveAttribute("aria-current", "page");
  await expect(history.locator("#chart-host-memory_pct canvas")).toHaveCount(1);
});

test("health reports the store and every target", async ({ request }) => {
  const r = await request.get("/health");
  expect(r.status()).toBe(200);
  const health = await r.json();
  expect(health.status).toBe("ok");
  expect(health.store).toMatchObject({ backend: "sqlite", status: "up" });
  expect(health.targets.map((t: any) => [t.name, t.state])).toEqual(targets.map((t) => [t.name, "up"]));
});

test("the Overview's first load weighs under 1.2 MB and loads no chart library", async ({ browser }) => {
  // A fresh browser: empty cache, the admin's session.
  const context = await browser.newContext({ storageState: ADMIN_STATE });
  const page = await context.newPage();
  await page.goto("/");
  await page.locator("body[data-hydrated]").waitFor();
  await page.waitForLoadState("networkidle");
  const loaded = await page.evaluate(() => {
    const navigation = performance.getEntriesByType("navigation")[0] as PerformanceResourceTiming;
    const resources = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
    return [navigation, ...resources]
      .filter((r) => !new URL(r.name).pathname.startsWith("/api/"))
      .map((r) => ({ path: new URL(r.name).pathname, bytes: r.encodedBodySize, raw: r.decodedBodySize }));
  });
  const total = loaded.reduce((sum, r) => sum + r.bytes, 0);
  console.log(
    `Overview first load: ${loaded.map((r) => `${r.path} ${r.bytes} B (${r.raw} B raw)`).join(", ")}; total ${total} B`,
  );
  expect(loaded.map((r) => r.path)).toEqual(expect.arrayContaining([expect.stringMatching(/\.wasm$/)]));
  expect(loaded.some((r) => r.path.includes("echarts"))).toBe(false);
  expect(total).toBeLessThan(1_200_000);
  await context.close();
});
