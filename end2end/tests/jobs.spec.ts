import { expect, test } from "@playwright/test";
import { failOnCspViolations } from "./helpers";

test.beforeEach(({ page }) => failOnCspViolations(page));

test("a no-op job is planned, started, followed live, cancelled, and found in the history with its audit trail", async ({
  page,
}) => {
  await page.goto("/jobs");
  await page.locator("body[data-hydrated]").waitFor();
  const start = page.getByRole("region", { name: "Start a job" });
  await start.getByLabel("Kind").selectOption("noop");
  await start.getByLabel("Parameters").fill('{"steps": 400, "step_ms": 100}');
  await start.getByRole("button", { name: "Plan" }).click();
  const plan = start.getByRole("region", { name: "Plan" });
  await expect(plan).toContainText("Waits 400 steps of 100 ms and changes nothing.");
  await expect(plan.getByRole("listitem")).toHaveText(["sleep 100 ms, 400 times"]);
  await plan.getByRole("button", { name: "Start job" }).click();
  const queued = start.getByRole("status");
  await expect(queued).toContainText(/Job \d+ is queued/);
  const id = (await queued.getByRole("link").textContent())?.trim();

  // Its progress moves without a reload.
  const active = page.getByRole("table", { name: "Running and queued jobs" });
  const row = active.getByRole("row").filter({ has: page.getByRole("rowheader", { name: `#${id}` }) });
  const progress = row.getByRole("progressbar", { name: `Progress of job ${id}` });
  await expect(progress).toBeVisible({ timeout: 15_000 });
  const before = Number(await progress.getAttribute("value"));
  await expect.poll(async () => Number(await progress.getAttribute("value")), { timeout: 10_000 }).toBeGreaterThan(before);

  await row.getByRole("button", { name: `Cancel job ${id}` }).click();
  await expect(row).toHaveCount(0, { timeout: 10_000 });

  await page.goto("/jobs?state=cancelled&kind=noop");
  const history = page.getByRole("table", { name: "Job history" });
  await history.getByRole("link", { name: `#${id}` }).click();
  await expect(page.getByRole("heading", { level: 1, name: `Job ${id} · noop` })).toBeVisible();
  await expect(page.getByRole("definition").filter({ hasText: /^cancelled$/ })).toBeVisible();
  const trail = page.getByRole("table", { name: "Audit log" });
  for (const action of ["job.enqueue", "job.start", "job.cancel", "job.cancelled"]) {
    await expect(trail.getByText(action, { exact: true })).toBeVisible();
  }
  await expect(page.getByRole("table", { name: "Attempts" }).getByRole("row")).toHaveCount(2);
});

test("bad parameters get a clear error and queue nothing", async ({ page }) => {
  await page.goto("/jobs");
  await page.locator("body[data-hydrated]").waitFor();
  const start = page.getByRole("region", { name: "Start a job" });
  await start.getByLabel("Kind").selectOption("noop");
  await start.getByLabel("Parameters").fill('{"steps": 0}');
  await start.getByRole("button", { name: "Plan" }).click();
  await expect(start.getByRole("alert")).toHaveText("Planning failed: `steps` must be between 1 and 100000, not 0");
  await start.getByLabel("Parameters").fill("not json");
  await start.getByRole("button", { name: "Plan" }).click();
  await expect(start.getByRole("alert")).toContainText("Planning failed: the parameters are not JSON");
});
