/**
 * In Debian's headless Chromium (playwright-core, no browser download): the built package runs in
 * real pages against a real server. The outbox survives a reload (IndexedDB) [O6], and two tabs of
 * one user share one connection, the second relaying through the first, and taking over when the
 * first closes [X1].
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { type Server, createServer } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { type BrowserContext, type Page, chromium } from "playwright-core";

import { type Session, createGroup, externalToken, history, signUp } from "../support/api.js";
import { ParleyServer, freePort } from "../support/server.js";

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

const JWT_SECRET = "browser-test-secret-0123456789abcdef0123456789";
let server: ParleyServer;
let pages: Server;
let pagesUrl: string;
let profile: string;
let context: BrowserContext;

/** The test page: the built package and socket.io-client's ESM build, wired by an import map. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>parley client</title>
<script type="importmap">{"imports": {"socket.io-client": "/vendor/socket.io.esm.min.js"}}</script>
<script type="module">
  import { ParleyClient } from "/dist/index.js";
  const params = new URLSearchParams(location.search);
  const client = new ParleyClient(params.get("server"), {
    getToken: () => params.get("token"),
    socket: { transports: ["websocket"] },
    backoff: { baseMs: 100, maxMs: 500 },
  });
  window.parley = client;
  window.ready = client.connect();
</script>`;

async function serveFile(file: string, type: string): Promise<{ body: Buffer; type: string }> {
  return { body: await readFile(file), type };
}

async function route(url: string): Promise<{ body: Buffer | string; type: string } | undefined> {
  if (url === "/" || url.startsWith("/?")) return { body: PAGE, type: "text/html" };
  if (url === "/vendor/socket.io.esm.min.js") {
    return serveFile(path.join(packageRoot, "node_modules", "socket.io-client", "dist", "socket.io.esm.min.js"), "text/javascript");
  }
  const match = /^\/dist\/([\w.-]+\.js)$/.exec(url);
  if (match?.[1] !== undefined) return serveFile(path.join(packageRoot, "dist", match[1]), "text/javascript");
  if (url.startsWith("/dist/generated/")) return serveFile(path.join(packageRoot, url.slice(1)), "text/javascript");
  return undefined;
}

async function open(session: Session): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  // A token without a session outlives the server restart of the first test.
  const query = new URLSearchParams({ server: server.url, token: externalToken(JWT_SECRET, session.userId) });
  await page.goto(`${pagesUrl}/?${query.toString()}`);
  await page.waitForFunction(() => "parley" in window);
  return page;
}

/** Wait in the page until `expression` (evaluated against `window.parley`) is true. */
async function until(page: Page, expression: string, timeout = 20_000): Promise<void> {
  await page.waitForFunction(`(() => { const client = window.parley; return ${expression}; })()`, undefined, { timeout, polling: 50 });
}

async function connectedSockets(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith("parley_sockets_connected "));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

/** The server counts a closed tab's socket once it has seen it go: wait for that, bounded. */
async function socketsBecome(expected: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  let seen = await connectedSockets();
  while (seen !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    seen = await connectedSockets();
  }
  assert.equal(seen, expected, "sockets connected to the server");
}

before(async () => {
  const port = await freePort();
  pagesUrl = `http://127.0.0.1:${port}`;
  server = await ParleyServer.start({ SOCKET_CORS_ORIGINS: pagesUrl, JWT_SECRET });
  pages = createServer((request, response) => {
    void route(request.url ?? "/").then(
      (found) => {
        if (found === undefined) {
          response.writeHead(404).end();
          return;
        }
        response.writeHead(200, { "content-type": found.type }).end(found.body);
      },
      () => response.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => pages.listen(port, "127.0.0.1", () => resolve()));
  profile = await mkdtemp(path.join(tmpdir(), "parley-chromium-"));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
});

after(async () => {
  await context?.close();
  await new Promise<void>((resolve) => pages.close(() => resolve()));
  await server.dispose();
  await rm(profile, { recursive: true, force: true });
});

describe("in Chromium", () => {
  it("an entry written offline survives a reload and is sent once afterwards [O6]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    const page = await open(alice);
    await until(page, `client.state === "connected"`);
    await server.stop();
    await until(page, `client.state === "reconnecting"`);
    const clientMsgId = await page.evaluate(async (id) => {
      const parley = (window as unknown as { parley: import("../../src/index.js").ParleyClient }).parley;
      return parley.conversation(id, { after: 0 }).send("written offline").clientMsgId;
    }, conversationId);
    // Stored in IndexedDB before the reload (read back through a second connection to the database).
    await page.waitForFunction(
      async ([userId, id]) => {
        const { indexedDbOutboxStore } = await import("/dist/index.js" as string);
        const records = (await indexedDbOutboxStore()(userId).load()) as { clientMsgId: string }[];
        return records.some((record) => record.clientMsgId === id);
      },
      [alice.userId, clientMsgId] as const,
      { polling: 50 },
    );
    await page.reload();
    await page.waitForFunction(() => "parley" in window);
    await until(page, `client.pending().some((handle) => handle.clientMsgId === ${JSON.stringify(clientMsgId)} && handle.status === "queued")`);
    await server.restart();
    await until(page, `client.state === "connected" && client.pending().length === 0`);
    const held = await history(server.url, { ...alice, accessToken: externalToken(JWT_SECRET, alice.userId) }, conversationId);
    assert.deepEqual(
      held.map((message) => [message.body, message.client_msg_id]),
      [["written offline", clientMsgId]],
    );
    await page.close();
  });

  it("two tabs share one connection; the second relays through the first and takes over when it closes [X1]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    const before = await connectedSockets();
    const first = await open(bob);
    await until(first, `client.state === "connected" && client.role === "leader"`);
    const second = await open(bob);
    await until(second, `client.state === "connected" && client.role === "follower"`);
    assert.equal(await connectedSockets(), before + 1, "one socket for both tabs");

    await second.evaluate(async (id) => {
      const parley = (window as unknown as { parley: import("../../src/index.js").ParleyClient }).parley;
      await parley.conversation(id).send("from the second tab").stored;
    }, conversationId);
    const inFirst = `client.conversation(${JSON.stringify(conversationId)}).messages.length === 1`;
    await until(first, inFirst);
    await until(second, inFirst);

    await first.close();
    await until(second, `client.role === "leader" && client.state === "connected"`);
    await second.evaluate(async (id) => {
      const parley = (window as unknown as { parley: import("../../src/index.js").ParleyClient }).parley;
      await parley.conversation(id).send("after the first tab closed").stored;
    }, conversationId);
    const held = await history(server.url, bob, conversationId);
    assert.deepEqual(
      held.map((message) => message.body),
      ["from the second tab", "after the first tab closed"],
    );
    await socketsBecome(before + 1);
    await second.close();
  });
});
