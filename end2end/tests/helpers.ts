import { expect, Page } from "@playwright/test";

/** Signs in through the form and waits for the page it lands on to hydrate. */
export async function signIn(page: Page, username: string, password: string) {
  await page.getByLabel("User name").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
  await page.locator("body[data-hydrated]").waitFor();
}

/** Fails the test on any Content-Security-Policy violation the page reports. */
export function failOnCspViolations(page: Page) {
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) {
      throw new Error(`CSP violation: ${msg.text()}`);
    }
  });
}
