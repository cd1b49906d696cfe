import { expect, test } from "@playwright/test";
import { ADMIN_PASSWORD } from "../constants";

// With JavaScript disabled the server-rendered pages alone must carry the content, and the
// sign-in form must work as a plain form.
test.beforeEach(async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=\/$/);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
});

test("overview is fully server-rendered", async ({ page }) => {
  // The first check of each target runs right after start; wait until all read "up".
  await expect(async () => {
    await page.goto("/");
    const table = page.getByRole("table", { name: "Targets" });
    for (const name of ["app-db", "cache", "tasks"]) {
      const row = table.getByRole("row").filter({ has: page.getByRole("rowheader", { name }) });
      await expect(row.getByText("up", { exact: true })).toBeVisible({ timeout: 1_000 });
    }
  }).toPass({ timeout: 15_000 });
  await expect(page.locator("body[data-hydrated]")).toHaveCount(0);
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link")).toHaveCount(11);
});

test("links work as plain links", async ({ page }) => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Queues" }).click();
  await expect(page).toHaveURL(/\/queues$/);
  await expect(page.getByRole("heading", { level: 1, name: "Queues" })).toBeVisible();
});

test("signing out works without JavaScript", async ({ page }) => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
});

test("signing in without JavaScript lands on the page first asked for, query and all", async ({ page }) => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto("/audit?action=sign-in");
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/audit\?action=sign-in$/);
  await expect(page.getByRole("form", { name: "Filter the audit log" }).getByLabel("Action starts with")).toHaveValue(
    "sign-in",
  );
});
