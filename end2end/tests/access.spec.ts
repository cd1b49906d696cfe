import { expect, test } from "@playwright/test";
import { ADMIN_PASSWORD } from "../constants";
import { failOnCspViolations, signIn } from "./helpers";

const GENERIC = "The user name or password is not correct, or the account is locked for a while.";

test.beforeEach(({ page }) => failOnCspViolations(page));

test("signing in lands on the page first asked for; signing out closes the console", async ({ page }) => {
  await page.goto("/queues");
  await expect(page).toHaveURL(/\/login\?next=\/queues$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page).toHaveURL(/\/queues$/);
  await expect(page.getByRole("heading", { level: 1, name: "Queues" })).toBeVisible();
  await expect(page.getByLabel("Signed in as")).toContainText("admin");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=\/$/);
});

test("a wrong password and an unknown user get the same message", async ({ page }) => {
  for (const [user, password] of [
    ["admin", "not-the-password"],
    ["nobody-here", "not-the-password"],
  ]) {
    await page.goto("/login");
    await page.getByLabel("User name").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert")).toHaveText(GENERIC);
    await expect(page.getByRole("navigation", { name: "Main" })).toHaveCount(0);
  }
});

test("an admin adds a viewer, who sees actions they may not run disabled with the reason", async ({ page }) => {
  const viewer = `viewer${Date.now() % 100000}`;
  const password = "viewer-password-1";
  await page.goto("/users");
  await signIn(page, "admin", ADMIN_PASSWORD);
  const add = page.getByRole("region", { name: "Add a user" });
  await add.getByLabel("User name").fill(viewer);
  await add.getByLabel("Password").fill(password);
  await add.getByLabel("Role").selectOption("viewer");
  await add.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByRole("status")).toHaveText("Adding the user succeeded.");
  const row = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: viewer }) });
  await expect(row.getByRole("cell", { name: "viewer", exact: true })).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();

  await signIn(page, viewer, password);
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Audit" })).toHaveCount(0);
  await nav.getByRole("link", { name: "Overview" }).click();
  const checkNow = page.getByRole("button", { name: "Check now" });
  await expect(checkNow).toBeDisabled();
  await expect(checkNow).toHaveAccessibleDescription(
    `This needs the operator role; you are signed in as ${viewer} (viewer).`,
  );
  await nav.getByRole("link", { name: "Users" }).click();
  const addUser = page.getByRole("button", { name: "Add user" });
  await expect(addUser).toBeDisabled();
  await expect(addUser).toHaveAccessibleDescription(/This needs the admin role/);
  await expect(page.getByRole("button", { name: `Remove ${viewer}` })).toBeDisabled();
});

test("the audit log shows sign-ins and filters by action", async ({ page }) => {
  await page.goto("/audit");
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page).toHaveURL(/\/audit$/);
  const table = page.getByRole("table", { name: "Audit log" });
  await expect(table.getByRole("row").filter({ hasText: "sign-in" }).first()).toBeVisible();
  const filters = page.getByRole("form", { name: "Filter the audit log" });
  await filters.getByLabel("Action starts with").fill("user.");
  await filters.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/action=user\./);
  const rows = table.getByRole("row");
  await expect(rows.nth(1)).toContainText("user.add");
  await expect(table).not.toContainText("sign-in");
});
