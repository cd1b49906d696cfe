import { expect } from "@playwright/test";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** The release build under test. */
export const bin = process.env.PITWALL_BIN ?? path.resolve(__dirname, "../../dist/pitwall");

/** A console of a test's own, for what the shared demo must not go through (restarts, outages). */
export class OwnConsole {
  readonly dir: string;
  port = 0;
  child?: ChildProcess;
  /** Everything it printed so far. */
  output = "";

  constructor(
    readonly password: string,
    config: string,
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "pitwall-own-"));
    fs.writeFileSync(path.join(this.dir, "pitwall.toml"), config);
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts `pitwall <args>` (on the same port as before, if it ran already) and waits until healthy. */
  async start(args: string[]) {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(bin, [...args, "--config", path.join(this.dir, "pitwall.toml")], {
      cwd: this.dir,
      env: {
        ...process.env,
        PITWALL_ADDR: `127.0.0.1:${this.port}`,
        PITWALL_DATA: path.join(this.dir, "data"),
        PITWALL_ADMIN_PASSWORD: this.password,
        PITWALL_LOG: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (d) => (this.output += d));
    child.stderr?.on("data", (d) => (this.output += d));
    this.child = child;
    await expect
      .poll(async () => (await fetch(`${this.base}/health`).catch(() => null))?.status, { timeout: 60_000 })
      .toBe(200);
  }

  /** SIGTERM (SIGKILL after 15 s), and waits for the exit. */
  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(killer);
  }
}

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => done(p));
    });
  });
}
