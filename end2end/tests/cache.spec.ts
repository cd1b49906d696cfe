import { expect, type Locator, test } from "@playwright/test";
import { failOnCspViolations } from "./helpers";

test.beforeEach(({ page }) => failOnCspViolations(page));

/** Follows `link` to `url`. The Cache page redraws its panels when it reads the server again
 * (every 10 s), so a click that lands while a panel is being redrawn is tried again. */
async function clickThrough(link: Locator, url: RegExp) {
  await expect(async () => {
    await link.click({ timeout: 5_000 });
    await expect(link.page()).toHaveURL(url, { timeout: 3_000 });
  }).toPass({ timeout: 30_000 });
}

test("the cache page shows the demo Redis live, with its server, keys, slow log and latency", async ({ page }) => {
  await page.goto("/cache");
  await page.locator("body[data-hydrated]").waitFor();
  await expect(page.getByRole("heading", { level: 1, name: "Cache" })).toBeVisible();

  // Live figures: the demo's cache-aside reads give a hit rate, and it keeps moving.
  const figures = page.getByRole("region", { name: "Live cache figures" });
  const hit = figures.getByRole("article", { name: "Hit rate · cache" });
  await expect(hit.locator(".value")).toHaveText(/^\d+\.\d %$/, { timeout: 15_000 });
  const ops = figures.getByRole("article", { name: "Operations · cache" });
  await expect(ops.locator(".value")).toHaveText(/\/s$/);
  const keys = figures.getByRole("article", { name: "Keys · cache" });
  await expect(keys.locator(".value")).toHaveText(/^\d[\d,]*$/);
  // The throwaway Redis has no maxmemory: its share of the limit says so rather than a dash.
  const ofMax = figures.getByRole("article", { name: "Memory of maxmemory · cache" });
  await expect(ofMax.locator(".value")).toHaveText("no limit");

  const server = page.getByRole("region", { name: "Server cache" });
  await expect(server).toContainText(/Version\s*\d+\.\d+/);
  await expect(server).toContainText(/Role\s*master/);
  const db0 = page.getByRole("table", { name: "Keys per database" }).getByRole("row").filter({
    has: page.getByRole("rowheader", { name: "db0", exact: true }),
  });
  await expect(db0.getByRole("cell").first()).toHaveText(/^\d[\d,]*$/);

  // The demo's model responses count their own hits and misses: that cache's true hit rate.
  const apps = page.getByRole("table", { name: "Application hit rates" });
  const ai = apps.getByRole("row").filter({ has: page.getByRole("rowheader", { name: /^ai / }) });
  await expect(ai.getByRole("cell").first()).toHaveText(/^\d+\.\d %$/, { timeout: 15_000 });
  await expect(ai.getByRole("cell").nth(4)).toHaveText(/^\d+\.\d\d$/);

  // The demo tags its summaries: the registry finds the tags with their members.
  const tags = page.getByRole("table", { name: "Tags" });
  const projects = tags.getByRole("row").filter({ has: page.getByRole("rowheader", { name: /^projects / }) });
  await expect(projects.getByRole("cell").first()).toHaveText("set");
  await expect(projects.getByRole("cell").nth(1)).toHaveText(/^[1-9][\d,]*$/);
  await expect(page.getByRole("region", { name: "Tags on cache" })).toContainText("paced SCAN");

  // The throwaway Redis keeps its defaults: a 10 ms slow log, no latency monitor.
  await expect(page.getByRole("region", { name: "Slow log of cache" })).toContainText("10.0 ms or longer");
  await expect(page.getByRole("region", { name: "Latency of cache" })).toContainText("The latency monitor is off");
});

test("tags are found by the start of their name, and a pattern is refused with the reason", async ({ page }) => {
  await page.goto("/cache");
  await page.locator("body[data-hydrated]").waitFor();
  const find = page.getByRole("search", { name: "Find tags" });
  await find.getByLabel("Tags whose name starts with").fill("ai_resp");
  await find.getByRole("button", { name: "Find" }).click();
  await expect(page).toHaveURL(/\/cache\?tags=ai_resp$/);
  await page.locator("body[data-hydrated]").waitFor();
  const names = page.getByRole("table", { name: "Tags" }).getByRole("rowheader");
  await expect(names.first()).toHaveText(/^ai_responses /);
  for (const name of await names.allTextContents()) expect(name).toMatch(/^ai_resp/);
  await expect(page.getByRole("region", { name: "Tags on cache" })).toContainText("Keys under tag:ai_resp*");

  await page.getByLabel("Tags whose name starts with").fill("ai*");
  await page.getByRole("button", { name: "Find" }).click();
  await page.locator("body[data-hydrated]").waitFor();
  await expect(page.getByRole("alert")).toContainText('start of a tag\'s name "ai*" contains \'*\': a tag is one name, not a pattern');

  await page.getByRole("link", { name: "Every tag" }).click();
  await expect(page).toHaveURL(/\/cache$/);
  await expect(
    page.getByRole("table", { name: "Tags" }).getByRole("rowheader", { name: /^projects / }),
  ).toBeVisible();
});

test("a tag is invalidated from the cache page by a confirmed job, key by key", async ({ page }) => {
  test.setTimeout(90_000);
  await page.goto("/cache");
  await page.locator("body[data-hydrated]").waitFor();
  await clickThrough(
    page.getByRole("link", { name: "Invalidate tag projects", exact: true }),
    /\/jobs\?kind=invalidate_tag&target=cache&params=/,
  );
  await page.locator("body[data-hydrated]").waitFor();
  const start = page.getByRole("region", { name: "Start a job" });
  await expect(start.getByLabel("Kind")).toHaveValue("invalidate_tag");
  await start.getByRole("button", { name: "Plan" }).click();
  const plan = start.getByRole("region", { name: "Plan" });
  await expect(plan).toContainText(/Unlinks the \d+ keys tagged `projects` \(tag:projects\)/);
  await expect(plan).toContainText("UNLINK cache:project:");
  await expect(plan.getByRole("button", { name: "Start job" })).toBeDisabled();
  await plan.getByLabel("Type cache to confirm").fill("cache");
  await plan.getByRole("button", { name: "Start job" }).click();
  const queued = start.getByRole("status");
  await expect(queued).toContainText(/Job \d+ is queued/);
  await queued.getByRole("link").click();
  await expect(page.getByRole("definition").filter({ hasText: /^succeeded$/ })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole("region", { name: "Parameters" })).toContainText(/"unlinked": \d+/);
  // The plan's long summary wraps: the page is no wider than the window.
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
});

test("a recipe is warmed from the cache page, and a second run with refresh-ahead rewrites nothing", async ({ page }) => {
  test.setTimeout(120_000);
  const warm = async () => {
    await page.goto("/cache");
    await page.locator("body[data-hydrated]").waitFor();
    const recipes = page.getByRole("table", { name: "Warming recipes" });
    const row = recipes.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "user_profiles" }) });
    await expect(row).toContainText("cache:user:{id}");
    await expect(row).toContainText("3600 s ± 10 %");
    await clickThrough(
      row.getByRole("link", { name: "Warm recipe user_profiles" }),
      /\/jobs\?kind=warm_cache&target=cache&params=/,
    );
    await page.locator("body[data-hydrated]").waitFor();
    const start = page.getByRole("region", { name: "Start a job" });
    await start.getByRole("button", { name: "Plan" }).click();
    const plan = start.getByRole("region", { name: "Plan" });
    await expect(plan).toContainText(/Warms recipe `user_profiles`: about \d+ rows from `app-db`/);
    await expect(plan).toContainText(/SET cache:user:1 <\d+ bytes> EX 3600 s ± 10 %/);
    await expect(plan).toContainText(/SADD tag:plan:\w+ cache:user:1/);
    await plan.getByRole("button", { name: "Start job" }).click();
    const queued = start.getByRole("status");
    await expect(queued).toContainText(/Job \d+ is queued/);
    await queued.getByRole("link").click();
    await expect(page.getByRole("definition").filter({ hasText: /^succeeded$/ })).toBeVisible({ timeout: 60_000 });
    return page.getByRole("region", { name: "Parameters" });
  };

  const first = await warm();
  await expect(first).toContainText(/"written": [1-9]\d*/);
  await expect(first).toContainText('"fresh_kept": 0');
  const second = await warm();
  await expect(second).toContainText('"written": 0');
  await expect(second).toContainText(/"fresh_kept": [1-9]\d*/);

  // The keys are tagged after their values: the registry finds the plan tags.
  await page.goto("/cache");
  await page.locator("body[data-hydrated]").waitFor();
  const tags = page.getByRole("table", { name: "Tags" });
  const pro = tags.getByRole("row").filter({ has: page.getByRole("rowheader", { name: /^plan:/ }) }).first();
  await expect(pro.getByRole("cell").nth(1)).toHaveText(/^[1-9][\d,]*$/);
  await expect(pro.getByRole("link", { name: /^Prune tag plan:/ })).toBeVisible();
});

test("the keyspace is analysed by a job and shown per prefix, with the TTL policies' offenders", async ({ page }) => {
  test.setTimeout(90_000);
  await page.goto("/cache");
  await page.locator("body[data-hydrated]").waitFor();
  await clickThrough(
    page.getByRole("link", { name: "Analyze keyspace…" }),
    /\/jobs\?kind=analyze_keyspace&target=cache&params=/,
  );
  await page.locator("body[data-hydrated]").waitFor();
  const start = page.getByRole("region", { name: "Start a job" });
  await start.getByRole("button", { name: "Plan" }).click();
  const plan = start.getByRole("region", { name: "Plan" });
  await expect(plan).toContainText(/Looks at \d+ of the \d+ keys with a paced SCAN/);
  await plan.getByRole("button", { name: "Start job" }).click();
  await start.getByRole("status").getByRole("link").click();
  await expect(page.getByRole("definition").filter({ hasText: /^succeeded$/ })).toBeVisible({ timeout: 60_000 });

  await page.goto("/cache");
  await page.locator("body[data-hydrated]").waitFor();
  const keyspace = page.getByRole("region", { name: "Keyspace of cache" });
  await expect(keyspace).toContainText(/Job \d+ finished/);
  const prefixes = keyspace.getByRole("table", { name: "Keys per prefix" });
  const summaries = prefixes.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "cache:project:", exact: true }) });
  await expect(summaries.getByRole("cell").first()).toHaveText(/^[1-9][\d,]*$/);
  const policies = keyspace.getByRole("table", { name: "TTL policies" });
  await expect(policies.getByRole("rowheader", { name: "ai_cache:response:" })).toBeVisible();
  await expect(keyspace.getByRole("table", { name: "Largest keys" })).toBeVisible();
});
