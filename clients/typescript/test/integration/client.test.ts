/**
 * Against a real `parley serve` (SQLite) with the real socket.io-client: login, send, receive,
 * sync after a disconnect, REST paging, force_logout by reason, the outbox across a restart.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { type GetToken, ParleyClient, type ParleyClientOptions, memoryOutboxStore } from "../../src/index.js";
import { type Session, call, createGroup, history, logIn, postMessage, signUp } from "../support/api.js";
import { TcpProxy } from "../support/proxy.js";
import { ParleyServer } from "../support/server.js";
import { reaches, until } from "../support/wait.js";

let server: ParleyServer;
let proxy: TcpProxy;
const clients: ParleyClient[] = [];

function tokenOf(session: Session): GetToken {
  return () => session.accessToken;
}

function client(session: Session, options: Partial<ParleyClientOptions> = {}, url = server.url): ParleyClient {
  const made = new ParleyClient(url, {
    getToken: tokenOf(session),
    socket: { transports: ["websocket"] },
    backoff: { baseMs: 50, maxMs: 300 },
    ...options,
  });
  clients.push(made);
  return made;
}

async function connected(made: ParleyClient): Promise<ParleyClient> {
  const ready = new Promise((resolve) => made.once("ready", resolve));
  await made.connect();
  await ready;
  return made;
}

before(async () => {
  server = await ParleyServer.start();
  proxy = await TcpProxy.start(server.port);
});

after(async () => {
  for (const made of clients) made.close();
  await proxy.close();
  await server.dispose();
});

describe("against parley serve", () => {
  it("sends and receives: the sender's copy is the ack's echo, the other's is live, each once [O1 M1 C1]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    const states: string[] = [];
    const a = client(alice);
    a.on("state", (change) => states.push(`${change.previous}>${change.current}`));
    await connected(a);
    const b = await connected(client(bob));

    const handle = a.conversation(conversationId).send("hello bob");
    assert.equal(handle.status, "queued");
    const stored = await handle.stored;
    assert.equal(handle.status, "sent");
    assert.equal(stored.client_msg_id, handle.clientMsgId);
    assert.equal(stored.body, "hello bob");

    const inbox = b.conversation(conversationId);
    await until(b, () => inbox.messages.length === 1, ["message"], "bob's copy");
    assert.deepEqual(
      inbox.messages.map((m) => [m.seq, m.body, m.source]),
      [[stored.seq, "hello bob", "live"]],
    );
    assert.deepEqual(
      a.conversation(conversationId).messages.map((m) => [m.seq, m.source]),
      [[stored.seq, "echo"]],
    );
    assert.deepEqual(a.conversation(conversationId).pending, []);
    assert.deepEqual(states, ["idle>connecting", "connecting>connected"]);
  });

  it("a client cut off catches up with one chat:sync when it is back, in seq order [R1 R2 C2]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    const a = await connected(client(alice));
    const b = await connected(client(bob, {}, proxy.url));
    const inbox = b.conversation(conversationId);

    const lost = reaches(b, "reconnecting");
    proxy.refuse();
    proxy.cut();
    await lost;
    for (const body of ["one", "two", "three"]) await a.conversation(conversationId).send(body).stored;
    const back = reaches(b, "connected");
    proxy.allow();
    await back;
    await until(b, () => inbox.messages.length === 3, ["message"], "the three missed messages");
    assert.deepEqual(
      inbox.messages.map((m) => [m.body, m.source]),
      [
        ["one", "sync"],
        ["two", "sync"],
        ["three", "sync"],
      ],
    );
    assert.deepEqual(
      inbox.messages.map((m) => m.seq),
      [1, 2, 3],
    );
    assert.equal(inbox.cursor, 3);
  });

  it("recovered: false pages the rest over REST [R6]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    const b = await connected(client(bob, { syncLimit: 2 }, proxy.url));
    const inbox = b.conversation(conversationId);
    const lost = reaches(b, "reconnecting");
    proxy.refuse();
    proxy.cut();
    await lost;
    for (let i = 1; i <= 7; i++) await postMessage(server.url, alice, conversationId, `m${i}`);
    proxy.allow();
    await until(b, () => inbox.messages.length === 7, ["message"], "seven messages");
    assert.deepEqual(
      inbox.messages.map((m) => m.body),
      ["m1", "m2", "m3", "m4", "m5", "m6", "m7"],
    );
    assert.ok(inbox.messages.every((m) => m.source === "sync"));
  });

  it("unread counts come from session:ready and follow markRead [M2 R3]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    for (const body of ["a", "b", "c"]) await postMessage(server.url, alice, conversationId, body);
    const b = await connected(client(bob, { unreadBacklog: 2 }));
    const inbox = b.conversation(conversationId);
    assert.equal(inbox.unread, 3);
    await until(b, () => inbox.messages.length === 2, ["message"], "the unread backlog");
    assert.deepEqual(
      inbox.messages.map((m) => m.body),
      ["b", "c"],
    );
    await inbox.markRead();
    assert.equal(inbox.unread, 0);
    await assert.rejects(inbox.markRead(99), { code: "VALIDATION_ERROR" });
  });

  it("a conversation placed while messages flow shows every one after the read position [R3 R4]", async () => {
    // Alice keeps sending while bob connects: a message may reach bob live before his
    // session:ready, between it and his client's first chat:sync answer, or after; whatever the
    // order, his client must show every message after his read position (here, all of them).
    const bob = await signUp(server.url, "bob");
    for (let round = 0; round < 5; round++) {
      // A new sender each round: REST writes are rate-limited per user.
      const alice = await signUp(server.url, "alice");
      const conversationId = await createGroup(server.url, alice, [bob]);
      let posted = 0;
      let sending = true;
      const flow = (async () => {
        for (; sending || posted < 5; posted++) await postMessage(server.url, alice, conversationId, `m${posted}`);
      })();
      const b = await connected(client(bob));
      sending = false;
      await flow;
      const inbox = b.conversation(conversationId);
      await until(b, () => inbox.cursor === posted, ["message"], `all ${posted} of alice's messages`);
      assert.deepEqual(
        inbox.messages.map((m) => m.seq),
        Array.from({ length: posted }, (_, i) => i + 1),
        `round ${round}`,
      );
      b.close();
    }
  });

  it("a send the server refuses fails with rollback, and the next one goes on [O4]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    const stranger = await signUp(server.url, "eve");
    const e = await connected(client(stranger));
    const refused = e.conversation(conversationId).send("let me in");
    await assert.rejects(refused.stored, (error: { code: string; rollback: boolean }) => {
      assert.equal(error.code, "FORBIDDEN");
      assert.equal(error.rollback, true);
      return true;
    });
    assert.equal(refused.status, "failed");
    const a = await connected(client(alice));
    const tooLong = a.conversation(conversationId).send("x".repeat(5000));
    const fine = a.conversation(conversationId).send("fine");
    await assert.rejects(tooLong.stored, { code: "VALIDATION_ERROR" });
    assert.equal((await fine.stored).body, "fine");
    assert.equal(tooLong.cancel(), true);
    assert.equal(tooLong.status, "cancelled");
  });

  it("an entry left by a closed client goes out from the next one, once [O6 O5]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    const stores = memoryOutboxStore();
    proxy.refuse();
    const first = client(alice, { outboxStore: stores, userId: alice.userId }, proxy.url);
    await first.connect();
    const handle = first.conversation(conversationId).send("written offline");
    await until(first, () => first.state === "reconnecting", ["state"], "the refused connect");
    first.close();
    proxy.allow();
    assert.equal(handle.status, "queued");

    const second = client(alice, { outboxStore: stores, userId: alice.userId });
    const outbox = new Promise<string>((resolve) => second.on("outbox", (update) => update.status === "sent" && resolve(update.record.clientMsgId)));
    await connected(second);
    assert.equal(await outbox, handle.clientMsgId);
    const held = await history(server.url, alice, conversationId);
    assert.deepEqual(
      held.map((m) => [m.body, m.client_msg_id]),
      [["written offline", handle.clientMsgId]],
    );
  });

  it("force_logout closes with its reason: duplicate_login and logout [T4]", async () => {
    const alice = await signUp(server.url, "alice", "phone");
    const a = await connected(client(alice));
    const closed = reaches(a, "closed");
    await logIn(server.url, alice.username, alice.password, "phone");
    assert.equal((await closed).reason, "duplicate_login");

    const bob = await signUp(server.url, "bob");
    const b = await connected(client(bob));
    const loggedOut = reaches(b, "closed");
    await call(`${server.url}/api/auth/logout`, "POST", undefined, bob.accessToken);
    assert.equal((await loggedOut).reason, "logout");
  });

  it("a token that can no longer be had closes the client [T1]", async () => {
    const alice = await signUp(server.url, "alice");
    const a = client(alice, { getToken: () => null, userId: alice.userId });
    const closed = reaches(a, "closed");
    await a.connect();
    assert.equal((await closed).reason, "token_unavailable");
  });

  it("a revoked session's token is refused at connect and closes the client [C6]", async () => {
    const alice = await signUp(server.url, "alice");
    await call(`${server.url}/api/auth/logout`, "POST", undefined, alice.accessToken);
    const a = client(alice);
    const closed = reaches(a, "closed");
    await a.connect();
    assert.match((await closed).reason, /^(session_revoked|unauthorized)$/);
  });

  it("presence: a snapshot, then live updates [P1]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    await createGroup(server.url, alice, [bob]);
    const a = await connected(client(alice));
    const statuses = await a.presence.subscribe([bob.userId]);
    assert.deepEqual(
      statuses.map((s) => [s.user_id, s.status]),
      [[bob.userId, "offline"]],
    );
    const b = await connected(client(bob));
    await until(a, () => a.presence.status(bob.userId)?.status === "online", ["presence"], "bob online");
    b.close();
    await until(a, () => a.presence.status(bob.userId)?.status === "offline", ["presence"], "bob offline", 20_000);
  });
});
