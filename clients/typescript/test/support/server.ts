/**
 * A real `parley serve` for the tests: a free loopback port, SQLite in a temporary folder, started
 * and stopped by the test. `restart()` keeps the database, as a redeploy would.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const repositoryRoot = path.resolve(packageRoot, "..", "..");
export const PARLEY_BIN = process.env["PARLEY_BIN"] ?? path.join(repositoryRoot, ".venv", "bin", "parley");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export class ParleyServer {
  readonly url: string;
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(env: { [name: string]: string } = {}): Promise<ParleyServer> {
    const dir = await mkdtemp(path.join(tmpdir(), "parley-client-"));
    const port = await freePort();
    const server = new ParleyServer(port, dir, {
      ...process.env,
      APP_ENV: "local",
      DATABASE_URL: `sqlite+aiosqlite:///${path.join(dir, "parley.db")}`,
      REDIS_URL: "",
      // the tests sign up many users from one address in seconds: a sign-up counts against both limits
      RATE_LIMIT_AUTH: "1000/1",
      RATE_LIMIT_REST: "1000/1",
      LOG_LEVEL: "WARNING",
      PYTHONUNBUFFERED: "1",
      ...env,
    });
    await server.run();
    return server;
  }

  get logPath(): string {
    return path.join(this.dir, "server.log");
  }

  /** Stop gracefully (SIGTERM), or abruptly with `kill: true` (SIGKILL), then start again on the same port and database. */
  async restart(options: { kill?: boolean } = {}): Promise<void> {
    await this.stop(options.kill === true ? "SIGKILL" : "SIGTERM");
    await this.run();
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  async log(): Promise<string> {
    return readFile(this.logPath, "utf8").catch(() => "");
  }

  private async run(): Promise<void> {
    const log = createWriteStream(this.logPath, { flags: "a" });
    await new Promise<void>((resolve) => log.once("open", () => resolve()));
    const child = spawn(PARLEY_BIN, ["serve", "--host", "127.0.0.1", "--port", String(this.port)], {
      cwd: this.dir,
      env: this.env,
      stdio: ["ignore", log, log],
    });
    this.process = child;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`parley serve exited with ${child.exitCode}:\n${await this.log()}`);
      try {
        if ((await fetch(`${this.url}/health`)).status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`parley serve did not answer /health within 30 s:\n${await this.log()}`);
  }
}
