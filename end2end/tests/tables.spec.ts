import { expect, test } from "@playwright/test";
import { failOnCspViolations } from "./helpers";

test.beforeEach(({ page }) => failOnCspViolations(page));

test("the tables page shows the demo's tables, connections, cache, wraparound and sequences", async ({ page }) => {
  await page.goto("/tables");
  await page.locator("body[data-hydrated]").waitFor();
  await expect(page.getByRole("heading", { level: 1, name: "Tables and maintenance" })).toBeVisible();

  const tables = page.getByRole("table", { name: "Tables of app-db" });
  const events = tables.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "public.events", exact: true }) });
  await expect(events).toBeVisible();
  // Rows are counted (thousands, with a thousands separator) and the table has a size.
  await expect(events.getByRole("cell").first()).toHaveText(/^\d{1,3}(,\d{3})+$/);
  await expect(events.getByRole("cell").nth(5)).toHaveText(/\d+(\.\d+)? (KiB|MiB|GiB)/);

  const connections = page.getByRole("region", { name: "Connections" });
  await expect(connections.getByRole("definition").first()).toHaveText(/^\d+$/);
  await expect(connections).toContainText("active");

  const cache = page.getByRole("region", { name: "Cache hit rate" });
  await expect(cache).toContainText(/Tables \(heap\)\s*\d+(\.\d+)? %/);

  const wrap = page.getByRole("table", { name: "Databases by transaction ID age" });
  await expect(wrap.getByRole("rowheader", { name: "shop", exact: true })).toBeVisible();

  const sequences = page.getByRole("table", { name: "Sequences" });
  await expect(sequences.getByRole("rowheader", { name: "public.users_id_seq" })).toBeVisible();
  await expect(page.getByRole("region", { name: "Sessions" })).toBeVisible();
});

test("a table's vacuum link fills in a vacuum job, which runs and is dated on the page", async ({ page }) => {
  test.setTimeout(90_000);
  await page.goto("/tables");
  await page.locator("body[data-hydrated]").waitFor();
  await page.getByRole("link", { name: "Vacuum public.projects", exact: true }).click();
  await expect(page).toHaveURL(/\/jobs\?kind=vacuum&target=app-db&params=/);
  await page.locator("body[data-hydrated]").waitFor();
  const start = page.getByRole("region", { name: "Start a job" });
  await expect(start.getByLabel("Kind")).toHaveValue("vacuum");
  await start.getByRole("button", { name: "Plan" }).click();
  const plan = start.getByRole("region", { name: "Plan" });
  await expect(plan).toContainText('VACUUM (ANALYZE) "public"."projects"');
  await plan.getByRole("button", { name: "Start job" }).click();
  const queued = start.getByRole("status");
  await expect(queued).toContainText(/Job \d+ is queued/);
  await queued.getByRole("link").click();
  await expect(page.getByRole("definition").filter({ hasText: /^succeeded$/ })).toBeVisible({ timeout: 60_000 });

  await page.goto("/tables");
  const projects = page
    .getByRole("table", { name: "Tables of app-db" })
    .getByRole("row")
    .filter({ has: page.getByRole("rowheader", { name: "public.projects", exact: true }) });
  // Vacuumed and analyzed moments ago, not "never".
  await expect(projects.getByRole("cell").nth(3)).toHaveText(/ago$/);
  await expect(projects.getByRole("cell").nth(4)).toHaveText(/ago$/);
});
