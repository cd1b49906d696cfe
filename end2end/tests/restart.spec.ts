import { expect, test } from "@playwright/test";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

// A console of this test's own (the shared demo cannot be restarted): host figures only, fast
// intervals and one-second history buckets, restarted under an open page.
const bin = process.env.PITWALL_BIN ?? path.resolve(__dirname, "../../dist/pitwall");
let port = 0;
let base = "";
const password = "restart-admin-password";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pitwall-restart-"));
fs.writeFileSync(
  path.join(dir, "pitwall.toml"),
  "[telemetry]\ninterval_ms = 500\ntimeout_ms = 400\nhistory_bucket_ms = 1000\n",
);

function start(): ChildProcess {
  return spawn(bin, ["serve", "--config", path.join(dir, "pitwall.toml")], {
    cwd: dir,
    env: {
      ...process.env,
      PITWALL_ADDR: `127.0.0.1:${port}`,
      PITWALL_DATA: path.join(dir, "data"),
      PITWALL_ADMIN_PASSWORD: password,
      PITWALL_LOG: "warn",
    },
    stdio: "ignore",
  });
}

async function healthy() {
  await expect
    .poll(async () => (await fetch(`${base}/health`).catch(() => null))?.status, { timeout: 20_000 })
    .toBe(200);
}

async function stop(child: ChildProcess) {
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(killer);
}

test.beforeAll(async () => {
  port = await new Promise<number>((done) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => done(p));
    });
  });
  base = `http://127.0.0.1:${port}`;
});

let console_: ChildProcess;

test.afterAll(async () => {
  if (console_ && console_.exitCode === null) await stop(console_);
});

test("after a console restart the page reconnects by itself and the history is still there", async ({ page }) => {
  test.setTimeout(90_000);
  console_ = start();
  await healthy();
  await page.goto(`${base}/resources`);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(`${base}/resources`);
  await page.locator("body[data-hydrated]").waitFor();
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await page.waitForTimeout(3_500); // a few one-second buckets reach the store

  const restartedAt = Date.now();
  await stop(console_);
  console_ = start();
  await healthy();

  // The tab's stream reconnects by itself: the live figures move again, with no reload.
  const line = page
    .getByRole("region", { name: "Host figures" })
    .getByRole("img", { name: "Memory over the last 15 minutes" })
    .locator("polyline");
  const before = await line.getAttribute("points");
  await expect.poll(() => line.getAttribute("points"), { timeout: 20_000 }).not.toBe(before);
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);

  // The restarted console still knows the minutes before it: read from the store.
  const response = await page.request.post(`${base}/api/series`, {
    headers: { origin: base },
    form: {
      "requests[0][target]": "host",
      "requests[0][family]": "host",
      "requests[0][metric]": "memory_pct",
      window_ms: "600000",
    },
  });
  expect(response.status()).toBe(200);
  const [points] = (await response.json()) as [number, number][][];
  expect(points.some(([t]) => t < restartedAt)).toBe(true);
});
