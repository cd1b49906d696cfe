import { expect, test } from "@playwright/test";
import { failOnCspViolations } from "./helpers";

// Every page of the console's navigation, seen by the admin.
const pages = ["/", "/cache", "/queries", "/tables", "/queues", "/resources", "/jobs", "/alerts", "/embeds", "/users", "/audit"];

// A narrow window (a phone held sideways, a split screen).
test.use({ viewport: { width: 600, height: 900 } });

test("no page is wider than a narrow window: a wide table scrolls inside its panel", async ({ page }) => {
  failOnCspViolations(page);
  for (const path of pages) {
    await page.goto(path);
    await page.locator("body[data-hydrated]").waitFor();
    await expect(page.getByText(/^Loading/)).toHaveCount(0);
    await expect(page.getByRole("table").first()).toBeVisible();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${path} is ${overflow} px wider than the window`).toBeLessThanOrEqual(0);
  }
});
