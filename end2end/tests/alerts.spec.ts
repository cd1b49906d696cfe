import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { signIn } from "./helpers";
import { OwnConsole } from "./own-console";

// A demo of this test's own with one rule of its own that fires at once (its Redis has clients),
// and one-second collection; the test stops that Redis, so the shared demo is not used.
const password = "alerts-admin-password";
const own = new OwnConsole(
  password,
  `[telemetry]
interval_ms = 1000
timeout_ms = 800

[[alerts.rules]]
name = "cache_has_clients"
expr = "redis/clients >= 1"
for = "0s"
severity = "critical"
summary = "{target} has {value} clients (threshold {threshold})"
runbook_url = "/cache"
`,
);

test.afterAll(() => own.stop());

/** Does `act` until `check` passes: a click can land while the page redraws its tables. */
async function retry(act: () => Promise<unknown>, check: () => Promise<unknown>) {
  await expect(async () => {
    await act();
    await check();
  }).toPass({ timeout: 30_000 });
}

test("on-call: a critical alert raises the banner, its chart opens at its start, an operator acknowledges it for everyone, silences it, and it reads no data once its target is down", async ({
  page,
  browser,
}) => {
  test.setTimeout(180_000);
  await own.start(["demo", "--small"]);
  const redisPort = own.output.match(/cache\s+Redis\s+127\.0\.0\.1:(\d+)/)?.[1];
  expect(redisPort, own.output).toBeTruthy();

  await page.goto(`${own.base}/alerts`);
  await signIn(page, "admin", password);
  await expect(page).toHaveURL(/\/alerts$/);
  await expect(page.getByRole("heading", { level: 1, name: "Alerts" })).toBeVisible();

  const active = page.getByRole("table", { name: "Active alerts" });
  const firing = active.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "cache_has_clients" }) });
  // The page reads the alerts again every 10 s.
  await expect(firing.getByRole("cell").first()).toHaveText("firing", { timeout: 30_000 });
  await expect(firing.getByRole("cell").nth(1)).toHaveText("critical");
  await expect(firing.getByRole("cell").nth(2)).toHaveText("cache");
  await expect(firing.getByRole("cell").nth(3)).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(.* ago\)$/);
  await expect(firing.getByRole("cell").nth(5)).toHaveText("1.00");
  await expect(firing).toContainText(/cache has [\d.]+ clients \(threshold [\d.]+\)/);

  // The banner shows on every page while it fires.
  const banner = page.getByRole("alert", { name: "Critical alerts" });
  await expect(banner).toContainText("1 critical alert firing", { timeout: 15_000 });
  await expect(banner).toContainText("cache_has_clients on cache");
  await firing.getByRole("link", { name: "Runbook for cache_has_clients on cache" }).click();
  await expect(page).toHaveURL(/\/cache$/);
  await expect(banner).toContainText("cache_has_clients on cache");
  await banner.getByRole("link", { name: "Open Alerts" }).click();
  await expect(page).toHaveURL(/\/alerts$/);

  // Its chart, opened at the alert's start, with the threshold drawn.
  await retry(
    () => firing.getByRole("link", { name: "Chart of cache_has_clients on cache at its start" }).click({ timeout: 5_000 }),
    () =>
      expect(page).toHaveURL(/\/alerts\/chart\?rule=cache_has_clients&target=cache&family=redis&metric=clients&at=\d+&threshold=1$/, {
        timeout: 3_000,
      }),
  );
  await expect(page.getByRole("heading", { level: 1, name: "cache_has_clients on cache" })).toBeVisible();
  await expect(page.getByText(/redis\/clients from an hour before the alert started at .* UTC \(the vertical line\), the threshold 1 drawn across/)).toBeVisible();
  await expect(page.getByRole("figure", { name: "redis/clients on cache" })).toBeVisible();
  await expect(page.getByRole("img", { name: /^redis\/clients on cache: \d+ points/ })).toBeVisible();
  await expect(page.locator("#alert-chart canvas")).toBeVisible({ timeout: 15_000 });
  await page.getByRole("link", { name: "← Alerts" }).click();
  await expect(page).toHaveURL(/\/alerts$/);

  // Acknowledged with a comment; a comment is required.
  const ackForm = page.getByRole("region", { name: "Acknowledge cache_has_clients on cache" });
  await retry(
    () => firing.getByRole("button", { name: "Acknowledge cache_has_clients on cache" }).click({ timeout: 5_000 }),
    () => expect(ackForm).toBeVisible({ timeout: 3_000 }),
  );
  await ackForm.getByLabel("Comment").fill("looking at the clients");
  await ackForm.getByRole("button", { name: "Acknowledge" }).click();
  await expect(page.getByRole("status")).toHaveText("Acknowledging succeeded.");
  await expect(firing).toContainText("acknowledged by admin: looking at the clients");
  await expect(banner).toContainText("(all acknowledged)", { timeout: 15_000 });

  // Another user sees it acknowledged (and, as a viewer, cannot act on it).
  await page.goto(`${own.base}/users`);
  const add = page.getByRole("region", { name: "Add a user" });
  await add.getByLabel("User name").fill("vera");
  await add.getByLabel("Password").fill("viewer-password-1");
  await add.getByLabel("Role").selectOption("viewer");
  await add.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByRole("status")).toHaveText("Adding the user succeeded.");
  const other = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  const viewer = await other.newPage();
  await viewer.goto(`${own.base}/alerts`);
  await signIn(viewer, "vera", "viewer-password-1");
  const seen = viewer
    .getByRole("table", { name: "Active alerts" })
    .getByRole("row")
    .filter({ has: viewer.getByRole("rowheader", { name: "cache_has_clients" }) });
  await expect(seen).toContainText("acknowledged by admin: looking at the clients");
  await expect(seen.getByRole("button")).toHaveCount(0);
  await expect(viewer.getByRole("alert", { name: "Critical alerts" })).toContainText("cache_has_clients on cache");
  await other.close();

  // Silenced: still listed, marked, and the banner goes; ending the silence brings it back.
  await page.goto(`${own.base}/alerts`);
  await page.locator("body[data-hydrated]").waitFor();
  const silenceForm = page.getByRole("region", { name: "New silence" });
  await retry(
    () => firing.getByRole("button", { name: "Silence cache_has_clients on cache" }).click({ timeout: 5_000 }),
    () => expect(silenceForm.getByLabel("Matchers")).toHaveValue("alertname=cache_has_clients, target=cache", { timeout: 3_000 }),
  );
  await silenceForm.getByLabel("For").fill("forever");
  await silenceForm.getByLabel("Comment").fill("known: the demo always has clients");
  await silenceForm.getByRole("button", { name: "Silence" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "Silencing failed" })).toContainText("`forever` is not a duration");
  await silenceForm.getByLabel("For").fill("30m");
  await silenceForm.getByRole("button", { name: "Silence" }).click();
  await expect(page.getByRole("status")).toHaveText("Silencing succeeded.");
  await expect(firing).toContainText(/silenced \(#\d+\)/);
  const silences = page.getByRole("table", { name: "Silences" });
  await expect(silences).toContainText("alertname=cache_has_clients, target=cache");
  await expect(silences).toContainText("known: the demo always has clients");
  await expect(banner).toHaveCount(0, { timeout: 15_000 });
  await retry(
    () => silences.getByRole("button", { name: /End silence \d+/ }).click({ timeout: 5_000 }),
    () => expect(page.getByRole("status").filter({ hasText: "Ending the silence succeeded." })).toBeVisible({ timeout: 3_000 }),
  );
  await expect(banner).toContainText("cache_has_clients on cache", { timeout: 15_000 });

  // The history lists the episode, still firing, with who acknowledged it.
  const history = page.getByRole("table", { name: "Alert history" });
  const episode = history.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "cache_has_clients" }) });
  await expect(episode).toContainText("still firing");
  await expect(episode).toContainText("admin: looking at the clients");

  // A dead Redis never reads as healthy: the rule has no data, with the reason.
  execFileSync("pkill", ["-KILL", "-f", `redis-server 127.0.0.1:${redisPort}`]);
  await page.goto(`${own.base}/alerts`);
  await page.locator("body[data-hydrated]").waitFor();
  const rule = page
    .getByRole("table", { name: "Active alerts" })
    .getByRole("row")
    .filter({ has: page.getByRole("rowheader", { name: "cache_has_clients" }) });
  await expect(rule.getByRole("cell").first()).toHaveText("no data", { timeout: 30_000 });
  await expect(rule).toContainText("target down");
});
