import { expect, test } from "@playwright/test";
import { failOnCspViolations } from "./helpers";

const SLOW = /SELECT count\(\*\) FROM events WHERE project_id = \$1/;

test.beforeEach(async ({ page }) => {
  failOnCspViolations(page);
});

test("the queries page lists the workload by statement and sorts it", async ({ page }) => {
  await page.goto("/queries");
  await page.locator("body[data-hydrated]").waitFor();
  const table = page.getByRole("table", { name: "Top queries on app-db" });
  // The demo's scan for want of an index is there, marked slow under the test's thresholds.
  const row = table.getByRole("row").filter({ hasText: SLOW });
  await expect(row).toBeVisible({ timeout: 30_000 });
  // Slow once it has run 20 times in the window (the list is read again every 10 s).
  await expect(row.getByText("slow", { exact: true })).toBeVisible({ timeout: 45_000 });
  const slow = page.getByRole("region", { name: "Slow queries" });
  await expect(slow.getByRole("link", { name: SLOW })).toBeVisible();
  // The thresholds shown are the configured ones (end2end/pitwall-e2e.toml).
  await expect(slow).toContainText("A mean of 0.5 ms or more over at least 20 calls in the window.");
  await expect(row.getByRole("cell").nth(2)).toHaveText(/^[\d,]+$/);
  // Sorting by calls puts the most frequent first and says so.
  await table.getByRole("link", { name: "Calls" }).click();
  await expect(page).toHaveURL(/sort=calls/);
  await expect(page.getByRole("columnheader", { name: "Calls" })).toHaveAttribute("aria-sort", "descending");
  const calls = await page
    .getByRole("table", { name: "Top queries on app-db" })
    .getByRole("row")
    .locator("td:nth-of-type(3)")
    .allTextContents();
  const numbers = calls.map((c) => Number(c.replace(/,/g, "")));
  expect(numbers.length).toBeGreaterThan(2);
  expect([...numbers].sort((a, b) => b - a)).toEqual(numbers);
  // An unknown window in the URL falls back to the default one.
  await page.goto("/queries?window=3y");
  await expect(page.getByRole("navigation", { name: "Window" }).getByRole("link", { name: "15 min" })).toHaveAttribute(
    "aria-current",
    "page",
  );
});

test("a statement's page charts it over time and explains its plan", async ({ page }) => {
  await page.goto("/queries");
  await page.locator("body[data-hydrated]").waitFor();
  await page.getByRole("table", { name: "Top queries on app-db" }).getByRole("link", { name: SLOW }).click();
  await expect(page).toHaveURL(/\/queries\/app-db\/-?\d+$/);
  await expect(page.getByRole("heading", { level: 1, name: "Query" })).toBeVisible();
  await expect(page.getByRole("region", { name: "Statement" })).toContainText("FROM events WHERE project_id = $1");
  await expect(page.getByRole("img", { name: /^Mean time per minute: \d+ points/ })).toBeVisible();
  await page.locator("body[data-hydrated]").waitFor();
  await page.getByRole("button", { name: "Explain" }).click();
  const tree = page.getByRole("list", { name: "Plan tree" });
  await expect(tree).toContainText(/Scan/);
  await expect(page.getByText("The generic plan: the statement has parameters")).toBeVisible();
  // EXPLAIN ANALYZE refuses a statement whose parameter values are unknown.
  await page.getByRole("checkbox", { name: /Run it/ }).check();
  await page.getByRole("button", { name: "Explain" }).click();
  await expect(page.getByRole("alert")).toContainText("has parameters ($1 to $1)");
});

test("a suggested index is built by a confirmed job, and the slow statement then uses it", async ({ page }) => {
  // A concurrent build waits for the transactions running when it starts, twice: give the job its
  // minute beside the waits for the suggestion and for the list to catch up.
  test.setTimeout(150_000);
  await page.goto("/queries");
  await page.locator("body[data-hydrated]").waitFor();
  const suggestion = page.getByRole("article", { name: "Suggested index on events (project_id)" });
  await expect(suggestion).toBeVisible({ timeout: 30_000 });
  await expect(suggestion).toContainText('CREATE INDEX CONCURRENTLY "events_project_id_idx" ON "public"."events" ("project_id")');
  await expect(suggestion.getByRole("listitem").first()).toBeVisible();

  // The suggestion fills in the job; its plan is confirmed by typing the target's name.
  await suggestion.getByRole("link", { name: "Create index events_project_id_idx" }).click();
  await expect(page).toHaveURL(/\/jobs\?kind=create_index&target=app-db&params=/);
  await page.locator("body[data-hydrated]").waitFor();
  const start = page.getByRole("region", { name: "Start a job" });
  await expect(start.getByLabel("Kind")).toHaveValue("create_index");
  await start.getByRole("button", { name: "Plan" }).click();
  const plan = start.getByRole("region", { name: "Plan" });
  await expect(plan).toContainText('CREATE INDEX CONCURRENTLY "events_project_id_idx"');
  await expect(plan.getByRole("button", { name: "Start job" })).toBeDisabled();
  await plan.getByLabel("Type app-db to confirm").fill("app-db");
  await plan.getByRole("button", { name: "Start job" }).click();
  const queued = start.getByRole("status");
  await expect(queued).toContainText(/Job \d+ is queued/);
  await queued.getByRole("link").click();
  await expect(page).toHaveURL(/\/jobs\/\d+$/);
  await expect(page.getByRole("definition").filter({ hasText: /^succeeded$/ })).toBeVisible({ timeout: 60_000 });

  // The suggestion is gone, and the statement's plan now reads the new index.
  await page.goto("/queries");
  await expect(page.getByRole("article", { name: "Suggested index on events (project_id)" })).toHaveCount(0, { timeout: 20_000 });
  await page.getByRole("table", { name: "Top queries on app-db" }).getByRole("link", { name: SLOW }).click();
  await page.locator("body[data-hydrated]").waitFor();
  await page.getByRole("button", { name: "Explain" }).click();
  await expect(page.getByRole("list", { name: "Plan tree" })).toContainText("events_project_id_idx");
});
