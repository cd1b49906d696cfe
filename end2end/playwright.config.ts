import { defineConfig, devices } from "@playwright/test";
import * as os from "node:os";
import * as path from "node:path";
import { execSync } from "node:child_process";
import * as fs from "node:fs";
import { ADMIN_PASSWORD, ADMIN_STATE } from "./constants";

// The console under test: the release build copied out of the source tree (see .ci/test), running
// the small demo against its own throwaway PostgreSQL and Redis.
const bin = process.env.PITWALL_BIN ?? path.resolve(__dirname, "../dist/pitwall");
// A free port per run (workers load this file too and inherit the variable).
process.env.PITWALL_E2E_PORT ??= execSync(
  `node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"`,
)
  .toString()
  .trim();
const port = Number(process.env.PITWALL_E2E_PORT);
const baseURL = `http://127.0.0.1:${port}`;
// One data directory per run; workers load this file too and inherit the variable.
process.env.PITWALL_E2E_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), "pitwall-e2e-data-"));
const dataDir = process.env.PITWALL_E2E_DATA;
// The test portal that may frame the embeddable panels (embed.spec.ts serves it on this port,
// on loopback: browsers keep public pages from framing local ones). The console's config is the
// checked-in file plus that allow-list.
process.env.PITWALL_E2E_PORTAL_PORT ??= execSync(
  `node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"`,
)
  .toString()
  .trim();
const configPath = path.join(dataDir, "pitwall.toml");
fs.writeFileSync(
  configPath,
  fs.readFileSync(path.resolve(__dirname, "pitwall-e2e.toml"), "utf8") +
    `\n[embed]\nframe_ancestors = ["http://localhost:${process.env.PITWALL_E2E_PORTAL_PORT}"]\n`,
);

const chromium = {
  ...devices["Desktop Chrome"],
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  },
};

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: { baseURL, trace: "off" },
  projects: [
    // Signs in once as the admin and saves the session for the tests that need one.
    { name: "setup", use: { ...chromium }, testMatch: /sign-in\.setup\.ts/ },
    {
      name: "hydrated",
      use: { ...chromium, storageState: ADMIN_STATE },
      dependencies: ["setup"],
      testIgnore: /no-js\.spec\.ts|access\.spec\.ts|restart\.spec\.ts|outage\.spec\.ts/,
    },
    // Sign-in, sign-out and roles: each test signs in itself.
    { name: "access", use: { ...chromium }, testMatch: /access\.spec\.ts/ },
    { name: "no-js", use: { ...chromium, javaScriptEnabled: false }, testMatch: /no-js\.spec\.ts/ },
    // A console of its own, stopped and started under an open page.
    { name: "restart", use: { ...chromium }, testMatch: /restart\.spec\.ts|outage\.spec\.ts/ },
  ],
  webServer: {
    command: `"${bin}" demo --small`,
    cwd: os.tmpdir(),
    url: `${baseURL}/health`,
    timeout: 120_000,
    reuseExistingServer: false,
    // SIGTERM lets the demo throw its PostgreSQL and Redis away (the default is SIGKILL).
    gracefulShutdown: { signal: "SIGTERM", timeout: 15_000 },
    stdout: "pipe",
    stderr: "pipe",
    env: {
      PITWALL_CONFIG: configPath,
      PITWALL_ADMIN_PASSWORD: ADMIN_PASSWORD,
      PITWALL_ADDR: `127.0.0.1:${port}`,
      PITWALL_DATA: dataDir,
      PITWALL_LOG: "warn",
    },
  },
});
