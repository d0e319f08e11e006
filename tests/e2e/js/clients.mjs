// Many socket.io-client sockets with default options (long-polling first, then the upgrade to
// websocket), driven by an end-to-end test over stdin/stdout, one JSON object per line.
//
// stdin, first line: {"url", "clients": [{"token", "conversation_id", "expect"}], "timeout_ms"}
//   Each client connects with auth {token} and a connection of its own (as separate browsers do),
//   then the script prints {"phase": "ready", "tried", "connected", "upgraded", "failures", "sids"}
//   once every client has `session:ready` and has upgraded, or failed, or timeout_ms has passed.
// stdin, next line: "send". Each connected client emits one acked chat:send to its conversation
//   and waits for `expect` chat:message events from the other members; the script then prints
//   {"phase": "done", "acked", "received", "missing", "failures"} and exits.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const lines = createInterface({ input: process.stdin });
const inbox = [];
let wake = null;
lines.on("line", (line) => {
  inbox.push(line);
  if (wake) wake();
});
const nextLine = async () => {
  while (inbox.length === 0) await new Promise((resolve) => (wake = resolve));
  return inbox.shift();
};
const report = (object) => process.stdout.write(JSON.stringify(object) + "\n");
const deadline = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref());

function open(url, spec, timeoutMs) {
  const client = { spec, socket: null, received: 0, failure: null, waiters: [] };
  client.ready = Promise.race([
    new Promise((resolve, reject) => {
      const socket = io(url, { auth: { token: spec.token }, forceNew: true });
      client.socket = socket;
      let sessionReady = false;
      let upgraded = false;
      const settle = () => sessionReady && upgraded && resolve(client);
      socket.on("connect_error", (error) => reject(new Error(`connect_error: ${error.message}`)));
      socket.on("session:ready", () => {
        sessionReady = true;
        settle();
      });
      socket.on("chat:message", () => {
        client.received += 1;
        client.waiters.forEach((wakeUp) => wakeUp());
      });
      socket.io.on("open", () => {
        const engine = socket.io.engine;
        if (engine.transport.name === "websocket") upgraded = true;
        engine.on("upgrade", () => {
          upgraded = true;
          settle();
        });
        settle();
      });
    }),
    deadline(timeoutMs, "session:ready and upgrade"),
  ]).catch((error) => {
    client.failure = error.message;
    return client;
  });
  return client;
}

async function exchange(client, timeoutMs) {
  const { socket, spec } = client;
  const ack = await Promise.race([
    socket.emitWithAck("chat:send", {
      conversation_id: spec.conversation_id,
      body: `from ${socket.id}`,
      client_msg_id: `js-${socket.id}`,
    }),
    deadline(timeoutMs, "chat:send ack"),
  ]);
  if (!ack.ok) throw new Error(`chat:send refused: ${JSON.stringify(ack.error)}`);
  await Promise.race([
    new Promise((resolve) => {
      const check = () => client.received >= spec.expect && resolve();
      client.waiters.push(check);
      check();
    }),
    deadline(timeoutMs, `${spec.expect} chat:message`),
  ]);
}

const config = JSON.parse(await nextLine());
const clients = config.clients.map((spec) => open(config.url, spec, config.timeout_ms));
await Promise.all(clients.map((client) => client.ready));
const connected = clients.filter((client) => !client.failure);
report({
  phase: "ready",
  tried: clients.length,
  connected: connected.length,
  upgraded: connected.filter((client) => client.socket.io.engine.transport.name === "websocket").length,
  failures: clients.filter((client) => client.failure).map((client) => client.failure),
  sids: connected.map((client) => client.socket.io.engine.id),
});

if ((await nextLine()) === "send") {
  const outcomes = await Promise.allSettled(connected.map((client) => exchange(client, config.timeout_ms)));
  report({
    phase: "done",
    acked: outcomes.filter((outcome) => outcome.status === "fulfilled").length,
    received: connected.reduce((total, client) => total + client.received, 0),
    missing: connected.reduce((total, client) => total + Math.max(0, client.spec.expect - client.received), 0),
    failures: outcomes.filter((outcome) => outcome.status === "rejected").map((outcome) => outcome.reason.message),
  });
}
clients.forEach((client) => client.socket && client.socket.disconnect());
process.exit(0);
