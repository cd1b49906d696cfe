import { expect, test } from "@playwright/test";
import { OwnConsole } from "./own-console";

// A console of this test's own (the shared demo cannot be restarted): host figures only, fast
// intervals and one-second history buckets, restarted under an open page.
const password = "restart-admin-password";
const own = new OwnConsole(password, "[telemetry]\ninterval_ms = 500\ntimeout_ms = 400\nhistory_bucket_ms = 1000\n");

test.afterAll(() => own.stop());

test("after a console restart the page reconnects by itself and the history is still there", async ({ page }) => {
  test.setTimeout(90_000);
  await own.start(["serve"]);
  const base = own.base;
  await page.goto(`${base}/resources`);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(`${base}/resources`);
  await page.locator("body[data-hydrated]").waitFor();
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await page.waitForTimeout(3_500); // a few one-second buckets reach the store

  const restartedAt = Date.now();
  await own.stop();
  await own.start(["serve"]);

  // The tab's stream reconnects by itself: the live figures move again, with no reload.
  const line = page
    .getByRole("region", { name: "Host figures" })
    .getByRole("img", { name: "Memory over the last 15 minutes" })
    .locator("polyline");
  const before = await line.getAttribute("points");
  await expect.poll(() => line.getAttribute("points"), { timeout: 20_000 }).not.toBe(before);
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);

  // The restarted console still knows the minutes before it: read from the store.
  const response = await page.request.post(`${base}/api/series`, {
    headers: { origin: base },
    form: {
      "requests[0][target]": "host",
      "requests[0][family]": "host",
      "requests[0][metric]": "memory_pct",
      window_ms: "600000",
    },
  });
  expect(response.status()).toBe(200);
  const [points] = (await response.json()) as [number, number][][];
  expect(points.some(([t]) => t < restartedAt)).toBe(true);
});
