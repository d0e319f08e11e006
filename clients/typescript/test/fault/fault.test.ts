/**
 * Faults for real [F1 R2 R4 R5 O2 O3 O5 C2]: several clients of one group conversation send and
 * receive through a TCP proxy that delays frames, drops some (breaking their connection), cuts
 * every connection at random times, while the server process is killed once and started again
 * on the same database. At the end every client holds the server's list, in seq order, each
 * `client_msg_id` once, every message sent present.
 *
 * FAULT_SEED picks the random schedule (printed, so a failing run can be repeated).
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";

import { type OutboxHandle, ParleyClient } from "../../src/index.js";
import { type Session, createGroup, externalToken, history, signUp } from "../support/api.js";
import { TcpProxy } from "../support/proxy.js";
import { ParleyServer } from "../support/server.js";
import { until } from "../support/wait.js";

const CLIENTS = 4;
const JWT_SECRET = "fault-test-secret-0123456789abcdef0123456789";
const MESSAGES_EACH = 60;
const SEED = Number(process.env["FAULT_SEED"] ?? Date.now() % 100_000);

/** mulberry32: a small seeded generator, so a schedule can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let server: ParleyServer;
let proxy: TcpProxy;
const clients: ParleyClient[] = [];

before(async () => {
  server = await ParleyServer.start({ JWT_SECRET });
  proxy = await TcpProxy.start(server.port);
});

after(async () => {
  for (const client of clients) client.close();
  await proxy.close();
  await server.dispose();
});

it("every client ends with the server's list, each message once, none lost [F1]", { timeout: 240_000 }, async () => {
  const random = seeded(SEED);
  const sessions: Session[] = [];
  for (let i = 0; i < CLIENTS; i++) sessions.push(await signUp(server.url, `fault${i}`));
  const [owner, ...members] = sessions as [Session, ...Session[]];
  const conversationId = await createGroup(server.url, owner, members, "faults");

  let reconnects = 0;
  const gaps: string[] = [];
  const errors: string[] = [];
  for (const [index, session] of sessions.entries()) {
    const client = new ParleyClient(proxy.url, {
      // Tokens without a session: the server may lose its in-memory sessions when it is killed.
      getToken: () => externalToken(JWT_SECRET, session.userId),
      restUrl: server.url,
      // Half on websocket only, half starting on long-polling and upgrading, as browsers do.
      socket: index % 2 === 0 ? { transports: ["websocket"] } : {},
      backoff: { baseMs: 100, maxMs: 1_000 },
      ackTimeoutMs: 2_000,
      random,
    });
    client.on("state", (change) => {
      if (change.current === "reconnecting") reconnects++;
    });
    client.on("gap", (gap) => gaps.push(`client ${index}: ${gap.reason} ${gap.from}..${gap.to}`));
    client.on("error", (error) => errors.push(`client ${index}: ${error.message}`));
    clients.push(client);
    const ready = new Promise((resolve) => client.once("ready", resolve));
    await client.connect();
    await ready;
  }
  const started = Date.now();
  proxy.setChaos({ delayChance: 0.05, maxDelayMs: 400, dropChance: 0.003 }, random);

  // Random cuts of every connection, 0.3–1.5 s apart, for as long as messages are on their way.
  let cutting = true;
  const scheduleCut = (): void => {
    setTimeout(() => {
      if (!cutting) return;
      proxy.cut();
      scheduleCut();
    }, 300 + random() * 1_200);
  };
  scheduleCut();

  const handles: OutboxHandle[] = [];
  for (let round = 0; round < MESSAGES_EACH; round++) {
    for (const [index, client] of clients.entries()) handles.push(client.conversation(conversationId).send(`c${index} m${round}`));
  }
  const total = handles.length;

  // One abrupt server restart (SIGKILL, same database) once a third of the messages are stored.
  let stored = 0;
  let restarted!: Promise<void>;
  const thirdStored = new Promise<void>((resolve) => {
    for (const handle of handles) {
      void handle.stored.then(() => {
        if (++stored === Math.floor(total / 3)) resolve();
      });
    }
  });
  await thirdStored;
  restarted = server.restart({ kill: true });
  await restarted;
  await Promise.all(handles.map((handle) => handle.stored));
  cutting = false;
  proxy.setChaos(undefined);

  const truth = await history(server.url, { ...owner, accessToken: externalToken(JWT_SECRET, owner.userId) }, conversationId);
  for (const client of clients) {
    const view = client.conversation(conversationId);
    await until(client, () => view.cursor >= truth.length, ["message", "state"], "the whole conversation", 60_000);
  }

  const sentIds = handles.map((handle) => handle.clientMsgId);
  const serverIds = truth.map((message) => message.client_msg_id);
  const lost = sentIds.filter((id) => !serverIds.includes(id)).length;
  const duplicated = serverIds.length - new Set(serverIds).size;
  let clientsDiffering = 0;
  for (const [index, client] of clients.entries()) {
    const held = client.conversation(conversationId).messages;
    const same =
      held.length === truth.length &&
      held.every((message, i) => message.id === truth[i]?.id && message.seq === i + 1 && message.client_msg_id === truth[i]?.client_msg_id);
    if (!same) {
      clientsDiffering++;
      console.log(`fault test: client ${index} differs: ${describeDifference(held, truth)}`);
    }
  }
  if (clientsDiffering > 0) console.log(`fault test: gaps ${JSON.stringify(gaps)}; errors ${JSON.stringify(errors.slice(0, 20))}`);
  const figures = {
    seed: SEED,
    clients: CLIENTS,
    messages: total,
    stored: truth.length,
    cuts: proxy.stats.cuts,
    connections: proxy.stats.connections,
    reconnects,
    delayed_chunks: proxy.stats.delayedChunks,
    dropped_chunks: proxy.stats.droppedChunks,
    server_restarts: 1,
    lost,
    duplicated,
    clients_differing: clientsDiffering,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
  console.log(`fault test: ${JSON.stringify(figures)}`);

  assert.equal(lost, 0, "every message sent is stored");
  assert.equal(duplicated, 0, "no client_msg_id is stored twice");
  assert.equal(truth.length, total, "nothing else was stored");
  assert.deepEqual(
    truth.map((message) => message.seq),
    truth.map((_, i) => i + 1),
  );
  assert.equal(clientsDiffering, 0, "every client holds the server's list in seq order");
  assert.ok(proxy.stats.cuts >= 3, `the connections were cut (${proxy.stats.cuts})`);
  for (const handle of handles) assert.equal(handle.status, "sent");
});

/** What a client's list lacks or holds out of place, against the server's, for the failure message. */
function describeDifference(held: readonly { id: string; seq: number }[], truth: readonly { id: string; seq: number }[]): string {
  const heldIds = new Set(held.map((message) => message.id));
  const truthIds = new Set(truth.map((message) => message.id));
  const missing = truth.filter((message) => !heldIds.has(message.id)).map((message) => message.seq);
  const extra = held.filter((message) => !truthIds.has(message.id)).map((message) => message.seq);
  const firstOutOfPlace = held.findIndex((message, i) => message.id !== truth[i]?.id || message.seq !== i + 1);
  return `holds ${held.length} of ${truth.length}; missing seqs [${missing.join(",")}]; not on the server [${extra.join(",")}]; first out of place at index ${firstOutOfPlace}`;
}
