import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { OwnConsole } from "./own-console";

// A demo of this test's own, whose Redis the test stops (the shared demo must stay whole), with
// one-second collection so "within two intervals" is quick to check.
const password = "outage-admin-password";
const own = new OwnConsole(password, "[telemetry]\ninterval_ms = 1000\ntimeout_ms = 800\n");

test.afterAll(() => own.stop());

test("with Redis stopped the cache figures say down since when, and the rest keeps updating", async ({ page }) => {
  test.setTimeout(120_000);
  await own.start(["demo", "--small"]);
  const redisPort = own.output.match(/cache\s+Redis\s+127\.0\.0\.1:(\d+)/)?.[1];
  expect(redisPort, own.output).toBeTruthy();

  await page.goto(`${own.base}/`);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("body[data-hydrated]").waitFor();
  const figures = page.getByRole("region", { name: "Headline figures" });
  const cache = figures.getByRole("article", { name: /^Cache hit rate · / });
  await expect(cache.locator(".value")).toHaveText(/^\d+\.\d %$/, { timeout: 15_000 });

  execFileSync("pkill", ["-KILL", "-f", `redis-server 127.0.0.1:${redisPort}`]);
  const stoppedAt = Date.now();
  // Two intervals, plus the round's timeout and the stream's delivery.
  await expect(cache.locator(".reason")).toHaveText(/^down since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: /, {
    timeout: 4_000,
  });
  expect(Date.now() - stoppedAt).toBeLessThan(4_000);
  await expect(figures.getByRole("article", { name: /^Queue depth · / }).locator(".reason")).toContainText(
    "down since",
  );

  // The other figures keep updating.
  const cpu = figures.getByRole("img", { name: "CPU over the last 15 minutes" }).locator("polyline");
  const before = await cpu.getAttribute("points");
  await expect.poll(() => cpu.getAttribute("points"), { timeout: 10_000 }).not.toBe(before);
});
