/** The outbox on a scripted socket: statuses, order, retries with the same id, failures, expiry. */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import { USER_ID, message, ok, readyPayload, refused } from "../support/fake-socket.js";
import { type Stage, stage } from "../support/harness.js";

const A = "0000000a-0000-4000-8000-000000000000";
const B = "0000000b-0000-4000-8000-000000000000";

let current: Stage | undefined;
function setUp(...args: Parameters<typeof stage>): Stage {
  current = stage(...args);
  return current;
}
afterEach(() => current?.done());

function sends(s: Stage): { conversation_id: string; body: string; client_msg_id: string }[] {
  return s.server.socket.pending("chat:send").map((emit) => emit.payload as { conversation_id: string; body: string; client_msg_id: string });
}

function stored(conversationId: string, seq: number, clientMsgId: string) {
  return message(conversationId, seq, { client_msg_id: clientMsgId, sender_id: USER_ID });
}

describe("outbox", () => {
  it("queued until connected, then one in flight per conversation, in order, in parallel across them [O1 O2]", async () => {
    const s = setUp();
    const a1 = s.client.conversation(A, { after: 0 }).send("a1");
    const a2 = s.client.conversation(A).send("a2");
    const b1 = s.client.conversation(B, { after: 0 }).send("b1");
    assert.deepEqual([a1.status, a2.status, b1.status], ["queued", "queued", "queued"]);
    await s.connected(readyPayload());
    assert.deepEqual(
      sends(s).map((send) => send.body),
      ["a1", "b1"],
    );
    assert.deepEqual([a1.status, a2.status, b1.status], ["sending", "queued", "sending"]);
    s.server.socket.answer("chat:send", ok({ message: stored(A, 1, a1.clientMsgId) }));
    await s.tick();
    assert.equal((await a1.stored).seq, 1);
    assert.deepEqual(
      sends(s).map((send) => send.body),
      ["b1", "a2"],
    );
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => [m.seq, m.source]),
      [[1, "echo"]],
    );
    assert.deepEqual(
      (s.events.outbox ?? []).filter((u) => u.record.clientMsgId === a1.clientMsgId).map((u) => u.status),
      ["sending", "sent"],
    );
  });

  it("a lost ack and a dropped connection resend with the same client_msg_id [O3 C5]", async () => {
    const s = setUp({ ackTimeoutMs: 1000 });
    await s.connected(readyPayload());
    const handle = s.client.conversation(A, { after: 0 }).send("again");
    await s.tick();
    const first = sends(s)[0];
    await s.tick(1000); // no ack: ACK_TIMEOUT, then backoff (half of 500 ms)
    assert.equal(handle.status, "queued");
    await s.tick(250);
    const second = sends(s).at(-1);
    assert.equal(second?.client_msg_id, first?.client_msg_id);
    s.server.socket.drop();
    await s.tick();
    assert.equal(handle.status, "queued");
    await s.tick(60_000);
    s.server.socket.accept(readyPayload());
    await s.tick();
    const third = sends(s).at(-1);
    assert.equal(third?.client_msg_id, handle.clientMsgId);
    assert.equal(s.server.socket.pending("chat:send").length, 3, "each attempt is a fresh emit, never socket.io's buffer");
  });

  it("RATE_LIMITED waits retry_after before the next attempt [O3]", async () => {
    const s = setUp();
    await s.connected(readyPayload());
    const handle = s.client.conversation(A, { after: 0 }).send("slow down");
    await s.tick();
    s.server.socket.answer("chat:send", refused("RATE_LIMITED", { retry_after: 2.5 }));
    await s.tick(2499);
    assert.equal(sends(s).length, 0);
    await s.tick(1);
    assert.equal(sends(s)[0]?.client_msg_id, handle.clientMsgId);
    assert.equal(s.errors.length, 0, "flow control is not an error");
  });

  for (const code of ["VALIDATION_ERROR", "FORBIDDEN", "NOT_FOUND", "PAYLOAD_TOO_LARGE"]) {
    it(`${code} fails the entry with rollback; the next one goes on [O4]`, async () => {
      const s = setUp();
      await s.connected(readyPayload());
      const bad = s.client.conversation(A, { after: 0 }).send("bad");
      const next = s.client.conversation(A).send("next");
      await s.tick();
      s.server.socket.answer("chat:send", refused(code, {}, true));
      await s.tick();
      assert.equal(bad.status, "failed");
      assert.equal(bad.error?.code, code);
      assert.equal(bad.error?.rollback, true);
      await assert.rejects(bad.stored, { code });
      assert.deepEqual(
        sends(s).map((send) => send.body),
        ["next"],
      );
      assert.equal(next.status, "sending");
    });
  }

  it("the stored message arriving by sync settles the entry before its ack [O5]", async () => {
    const s = setUp();
    s.client.conversation(A, { after: 0 });
    const handle = s.client.conversation(A).send("mine");
    await s.connected(readyPayload({ rooms: [`group:${A}`] }));
    s.server.socket.answer("chat:sync", ok({ conversations: [{ conversation_id: A, messages: [stored(A, 1, handle.clientMsgId)], last_seq: 1, recovered: true, has_more: false }] }));
    await s.tick();
    assert.equal(handle.status, "sent");
    assert.equal((await handle.stored).seq, 1);
    s.server.socket.answer("chat:send", ok({ message: stored(A, 1, handle.clientMsgId) }));
    await s.tick();
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => [m.seq, m.source]),
      [[1, "sync"]],
      "the ack that follows adds nothing",
    );
    assert.deepEqual(s.client.conversation(A).pending, []);
  });

  it("entries older than the maximum age fail with EXPIRED [O6]", async () => {
    const s = setUp({ outboxMaxAgeMs: 60_000 });
    const handle = s.client.conversation(A, { after: 0 }).send("too late");
    await s.client.connect();
    await s.tick(61_000);
    s.server.socket.accept(readyPayload());
    await s.tick();
    assert.equal(handle.status, "failed");
    assert.equal(handle.error?.code, "EXPIRED");
    assert.equal(sends(s).length, 0);
  });

  it("cancel() only before sending or after failing; retry() only after failing [O7]", async () => {
    const s = setUp();
    const queued = s.client.conversation(A, { after: 0 }).send("never mind");
    assert.equal(queued.retry(), false);
    assert.equal(queued.cancel(), true);
    await assert.rejects(queued.stored, { code: "CANCELLED" });
    await s.connected(readyPayload());
    const handle = s.client.conversation(A).send("try twice");
    await s.tick();
    assert.equal(handle.status, "sending");
    assert.equal(handle.cancel(), false);
    s.server.socket.answer("chat:send", refused("VALIDATION_ERROR"));
    await s.tick();
    assert.equal(handle.retry(), true);
    await s.tick();
    assert.equal(sends(s)[0]?.client_msg_id, handle.clientMsgId);
    s.server.socket.answer("chat:send", ok({ message: stored(A, 1, handle.clientMsgId) }));
    assert.equal((await handle.stored).seq, 1);
  });
});

describe("presence and typing", () => {
  it("updates before the snapshot are held and applied after it; renewed on reconnect [P1]", async () => {
    const s = setUp();
    await s.connected(readyPayload());
    const bob = "0000000c-0000-4000-8000-000000000000";
    const snapshot = s.client.presence.subscribe([bob]);
    await s.tick();
    s.server.socket.server("user:status", { user_id: bob, status: "online", last_seen_at: null });
    assert.equal(s.client.presence.status(bob), undefined);
    s.server.socket.answer("presence:subscribe", ok({ statuses: [{ user_id: bob, status: "offline", last_seen_at: "2026-11-30T11:00:00Z" }] }));
    await snapshot;
    assert.equal(s.client.presence.status(bob)?.status, "online");
    assert.deepEqual(
      (s.events.presence ?? []).map((status) => status.status),
      ["offline", "online"],
    );
    s.server.socket.drop();
    await s.tick(60_000);
    s.server.socket.accept(readyPayload());
    await s.tick();
    assert.deepEqual(s.server.socket.pending("presence:subscribe").at(-1)?.payload, { user_ids: [bob] });
  });

  it("keystrokes send typing at the throttle and stop after TYPING_TTL; others expire [P2]", async () => {
    const s = setUp();
    await s.connected(readyPayload());
    const typed = (): unknown[] => s.server.socket.emitted.filter((emit) => emit.event === "chat:typing").map((emit) => emit.payload);
    const conversation = s.client.conversation(A, { after: 0 });
    conversation.keystroke();
    await s.tick(1000);
    conversation.keystroke();
    assert.equal(typed().length, 1, "within min(TYPING_TTL/2, 3 s) of the last");
    await s.tick(2000);
    conversation.keystroke();
    assert.equal(typed().length, 2);
    await s.tick(6000);
    assert.deepEqual(typed().at(-1), { conversation_id: A, typing: false });
    s.server.socket.server("chat:typing", { conversation_id: A, user_id: "u-2", typing: true, expires_in: 6 });
    assert.deepEqual(conversation.typists, ["u-2"]);
    await s.tick(6000);
    assert.deepEqual(conversation.typists, []);
  });
});
