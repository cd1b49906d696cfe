import { expect, test } from "@playwright/test";
import { failOnCspViolations } from "./helpers";

test.beforeEach(async ({ page }) => {
  failOnCspViolations(page);
  await page.goto("/queues");
  await page.locator("body[data-hydrated]").waitFor();
});

test("each Celery queue shows depth, flow, oldest wait and trend, live", async ({ page }) => {
  const broker = page.getByRole("region", { name: "Queues on tasks" });
  const table = broker.getByRole("table", { name: "Queues on tasks" });
  const row = (queue: string) => table.getByRole("row").filter({ has: page.getByRole("rowheader", { name: queue, exact: true }) });
  for (const queue of ["celery", "emails", "reports"]) {
    await expect(row(queue)).toBeVisible();
  }
  await expect(broker).toContainText(
    /[\d,]+ waiting in all, .+ in and .+ out; [\d,]+ delivered and not yet acknowledged.*; \d+ workers online\./,
  );
  // The demo's reports queue has a slow worker: it always holds a backlog with a measurable flow.
  const reports = row("reports");
  await expect(reports.getByRole("cell").nth(1)).toHaveText(/^(≥ )?[\d.,]+\/s$/, { timeout: 10_000 });
  await expect(reports.getByRole("cell").nth(3)).toHaveText(/^\d+ (s|min \d+ s)$/);
  await expect(reports.getByRole("img", { name: "Waiting on reports over the range" })).toBeVisible();
  // The chart of everything waiting follows the stream.
  const chart = broker.getByRole("img", { name: /^Waiting on tasks: / });
  const before = await chart.getAttribute("aria-label");
  await expect(chart).not.toHaveAttribute("aria-label", before!, { timeout: 10_000 });
  await expect(page.getByRole("region", { name: "Pitwall's job queue" })).toContainText(/\d+ running, \d+ waiting\./);
});

test("workers appear from their heartbeats on the event channel", async ({ page }) => {
  const workers = page.getByRole("table", { name: "Workers on tasks" });
  for (const name of ["worker1@demo", "worker2@demo"]) {
    const row = workers.getByRole("row").filter({ has: page.getByRole("rowheader", { name }) });
    await expect(row.getByText("online", { exact: true })).toBeVisible({ timeout: 10_000 });
    await expect(row.getByRole("cell").last()).toHaveText(/^\d+\.\d\d$/);
    await expect(row).toContainText(/ ago/);
  }
  await expect(page.getByRole("region", { name: "Queues on tasks" })).toContainText(/[1-9] workers online\./);
});

test("a peek shows the next messages read-only, and keeps to the broker's queues", async ({ page }) => {
  await page.getByRole("link", { name: "Peek at reports" }).click();
  await expect(page).toHaveURL(/\?peek=tasks\/reports$/);
  const panel = page.getByRole("region", { name: "Next messages on reports (tasks)" });
  const messages = panel.getByRole("table", { name: "Messages on reports" });
  await expect(messages.getByRole("row").nth(1)).toBeVisible();
  const tasks = await messages.getByRole("rowheader").allTextContents();
  expect(tasks.length).toBeGreaterThan(0);
  expect(tasks.length).toBeLessThanOrEqual(20);
  for (const t of tasks) expect(t).toBe("app.reports.export_events_csv");
  await expect(messages.getByRole("row").nth(1).getByRole("cell").nth(2)).toHaveText(/^\(\d+,\)$/);

  // The range picker keeps the peek open; Close removes it.
  await page.getByRole("navigation", { name: "Time range" }).getByRole("link", { name: "1 hour" }).click();
  await expect(page).toHaveURL(/peek=tasks\/reports&range=1h$/);
  await expect(panel).toBeVisible();
  await panel.getByRole("link", { name: "Close" }).click();
  await expect(page).toHaveURL(/\/queues\?range=1h$/);
  await expect(panel).toHaveCount(0);

  // Only the broker's own queues can be read.
  await page.goto("/queues?peek=tasks/secrets");
  await expect(page.getByRole("region", { name: "Next messages on secrets (tasks)" }).getByRole("alert")).toHaveText(
    'broker "tasks" has no queue named "secrets"',
  );
});
