import { test as setup } from "@playwright/test";
import { ADMIN_PASSWORD, ADMIN_STATE } from "../constants";
import { signIn } from "./helpers";

setup("sign in as the demo admin", async ({ page }) => {
  await page.goto("/");
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.context().storageState({ path: ADMIN_STATE });
});
