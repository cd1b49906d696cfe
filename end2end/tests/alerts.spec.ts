import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
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

test("the alerts page shows a firing alert with its value, threshold and runbook, and no data once its target is down", async ({
  page,
}) => {
  test.setTimeout(120_000);
  await own.start(["demo", "--small"]);
  const redisPort = own.output.match(/cache\s+Redis\s+127\.0\.0\.1:(\d+)/)?.[1];
  expect(redisPort, own.output).toBeTruthy();

  await page.goto(`${own.base}/alerts`);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/alerts$/);
  await page.locator("body[data-hydrated]").waitFor();
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
  await firing.getByRole("link", { name: "Runbook for cache_has_clients" }).click();
  await expect(page).toHaveURL(/\/cache$/);

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
