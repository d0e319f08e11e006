/** Timelines and recovery on a scripted socket: order, dedupe, batched sync, held live traffic, gaps. */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import { Timeline } from "../../src/timeline.js";
import { message, ok, readyPayload, refused } from "../support/fake-socket.js";
import { type Stage, stage } from "../support/harness.js";

const A = "0000000a-0000-4000-8000-000000000000";
const B = "0000000b-0000-4000-8000-000000000000";

let current: Stage | undefined;
function setUp(...args: Parameters<typeof stage>): Stage {
  current = stage(...args);
  return current;
}
afterEach(() => current?.done());

function synced(id: string, from: number, to: number, last = to, recovered = true) {
  const messages = [];
  for (let seq = from; seq <= to; seq++) messages.push(message(id, seq));
  return { conversation_id: id, messages, last_seq: last, recovered, has_more: !recovered };
}

describe("timeline [M1 R1]", () => {
  it("delivers in seq order, each once, holding what is above a hole", () => {
    const timeline = new Timeline(A);
    timeline.start(2);
    assert.deepEqual(timeline.accept(message(A, 5), "live"), []);
    assert.deepEqual(timeline.accept(message(A, 2), "live"), [], "at or below the floor");
    assert.deepEqual(
      timeline.accept(message(A, 3), "sync").map((m) => m.seq),
      [3],
    );
    assert.deepEqual(timeline.hole(), { from: 4, to: 4 });
    assert.deepEqual(
      timeline.accept(message(A, 4), "sync").map((m) => [m.seq, m.source]),
      [
        [4, "sync"],
        [5, "live"],
      ],
    );
    assert.deepEqual(timeline.accept(message(A, 4), "live"), [], "a duplicate");
    assert.equal(timeline.cursor, 5);
    assert.equal(timeline.hole(), undefined);
  });

  it("skipping a hole continues after it and keeps what was shown", () => {
    const timeline = new Timeline(A);
    timeline.start(0);
    timeline.accept(message(A, 1), "live");
    timeline.accept(message(A, 4), "live");
    assert.deepEqual(
      timeline.skipHole().map((m) => m.seq),
      [4],
    );
    assert.deepEqual(
      timeline.messages.map((m) => m.seq),
      [1, 4],
    );
  });
});

describe("recovery", () => {
  it("one chat:sync for every conversation of session:ready, unread ones from their backlog [R2 R3]", async () => {
    const s = setUp({ unreadBacklog: 2 });
    await s.connected(
      readyPayload({
        rooms: [`group:${A}`, `group:${B}`],
        unread: {
          conversations: [{ conversation_id: B, unread: 5, last_seq: 9, last_read_seq: 4, mentions: 0, last_message: null }],
          total: 5,
          notifications: 0,
          more: false,
          next_cursor: null,
        },
      }),
    );
    const [sync, probe] = s.server.socket.pending("chat:sync");
    assert.deepEqual(sync?.payload, { conversations: [{ conversation_id: B, after_seq: 7 }], limit: 100 });
    assert.deepEqual(probe?.payload, { conversations: [{ conversation_id: A, after_seq: 0 }], limit: 1 }, "A's tip is unknown");
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(B, 8, 9)] }));
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 1, 1, 12, false)] }));
    await s.tick();
    assert.deepEqual(
      s.client.conversation(B).messages.map((m) => m.seq),
      [8, 9],
    );
    assert.deepEqual(s.client.conversation(A).messages, [], "A starts at its tip (the answer names no read position)");
    assert.equal(s.client.conversation(A).cursor, 12);
    assert.equal(s.client.conversation(B).unread, 5);

    s.server.socket.drop();
    await s.tick(60_000);
    s.server.socket.accept(readyPayload({ rooms: [`group:${A}`, `group:${B}`] }));
    await s.tick();
    const [again] = s.server.socket.pending("chat:sync");
    assert.deepEqual(again?.payload, {
      conversations: [
        { conversation_id: A, after_seq: 12 },
        { conversation_id: B, after_seq: 9 },
      ],
      limit: 100,
    });
    assert.equal(s.server.socket.pending("chat:sync").length, 1, "one batched call");
  });

  it("a probed conversation starts at the read position: messages stored before the answer whose live copies come after it are kept [R3]", async () => {
    const s = setUp({ unreadBacklog: 3 });
    await s.connected(readyPayload({ rooms: [`group:${A}`, `group:${B}`] }));
    const [probe] = s.server.socket.pending("chat:sync");
    assert.deepEqual(probe?.payload, {
      conversations: [
        { conversation_id: A, after_seq: 0 },
        { conversation_id: B, after_seq: 0 },
      ],
      limit: 1,
    });
    s.server.socket.answer(
      "chat:sync",
      ok({
        conversations: [
          { ...synced(A, 1, 1, 2, false), last_read_seq: 0 },
          { ...synced(B, 1, 1, 9, false), last_read_seq: 1 },
        ],
      }),
    );
    await s.tick();
    s.server.socket.server("chat:message", { message: message(A, 2) });
    await s.tick();
    const [rest] = s.server.socket.pending("chat:sync");
    assert.deepEqual(rest?.payload, {
      conversations: [
        { conversation_id: A, after_seq: 1 },
        { conversation_id: B, after_seq: 6 },
      ],
      limit: 100,
    }, "A from its read position (message 1 came with the probe), B from the backlog below its tip");
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 2, 2), synced(B, 7, 9)] }));
    await s.tick();
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => [m.seq, m.source]),
      [
        [1, "sync"],
        [2, "live"],
      ],
    );
    assert.deepEqual(
      s.client.conversation(B).messages.map((m) => m.seq),
      [7, 8, 9],
    );
    assert.deepEqual(s.events.gap ?? [], []);
  });

  it("live messages between a connect and its session:ready are held until the timeline is placed [R3 R4]", async () => {
    const s = setUp();
    await s.client.connect();
    await s.tick();
    s.server.socket.open();
    s.server.socket.server("chat:message", { message: message(A, 2) });
    await s.tick();
    assert.deepEqual(s.client.conversation(A).messages, [], "nothing placed before session:ready");
    const unread = { conversation_id: A, unread: 2, last_seq: 2, last_read_seq: 0, mentions: 0, last_message: null };
    s.server.socket.server("session:ready", readyPayload({ rooms: [`group:${A}`], unread: { conversations: [unread], total: 2, notifications: 0, more: false, next_cursor: null } }));
    await s.tick();
    assert.deepEqual(s.server.socket.pending("chat:sync").at(-1)?.payload, { conversations: [{ conversation_id: A, after_seq: 0 }], limit: 100 });
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 1, 2)] }));
    await s.tick();
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => [m.seq, m.source]),
      [
        [1, "sync"],
        [2, "live"],
      ],
    );

    s.server.socket.drop();
    await s.tick(60_000);
    s.server.socket.open();
    s.server.socket.server("chat:message", { message: message(A, 4) });
    await s.tick();
    assert.deepEqual(s.server.socket.pending("chat:sync"), [], "after a reconnect too, nothing before session:ready");
    s.server.socket.server("session:ready", readyPayload({ rooms: [`group:${A}`] }));
    await s.tick();
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 3, 4)] }));
    await s.tick();
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => m.seq),
      [1, 2, 3, 4],
    );
  });

  it("live messages during a sync are held and merged in seq order [R4]", async () => {
    const s = setUp();
    s.client.conversation(A, { after: 3 });
    await s.connected(readyPayload({ rooms: [`group:${A}`] }));
    s.server.socket.server("chat:message", { message: message(A, 6) });
    s.server.socket.server("chat:message", { message: message(A, 4) });
    await s.tick();
    assert.deepEqual(s.client.conversation(A).messages, [], "nothing shown while the sync is on its way");
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 4, 5)] }));
    await s.tick();
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => [m.seq, m.source]),
      [
        [4, "live"],
        [5, "sync"],
        [6, "live"],
      ],
    );
    assert.deepEqual(
      (s.events.message ?? []).map((m) => m.seq),
      [4, 5, 6],
    );
  });

  it("a seq jump in live traffic syncs that conversation at once [R5]", async () => {
    const s = setUp();
    s.client.conversation(A, { after: 0 });
    await s.connected(readyPayload({ rooms: [`group:${A}`] }));
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 1, 1)] }));
    await s.tick();
    s.server.socket.server("chat:message", { message: message(A, 3) });
    await s.tick();
    const [jump] = s.server.socket.pending("chat:sync");
    assert.deepEqual(jump?.payload, { conversations: [{ conversation_id: A, after_seq: 1 }], limit: 100 });
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 2, 3)] }));
    await s.tick();
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => m.seq),
      [1, 2, 3],
    );
  });

  it("a hole the server cannot fill is a gap: event, onGap, then it continues [R8]", async () => {
    const gaps: unknown[] = [];
    const s = setUp({ onGap: (gap) => void gaps.push(gap) });
    s.client.conversation(A, { after: 0 });
    await s.connected(readyPayload({ rooms: [`group:${A}`] }));
    s.server.socket.answer("chat:sync", ok({ conversations: [{ ...synced(A, 1, 3), messages: [message(A, 1), message(A, 3)] }] }));
    await s.tick();
    assert.deepEqual(gaps, [{ conversationId: A, from: 2, to: 2, reason: "missing" }]);
    assert.deepEqual(s.events.gap, gaps);
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => m.seq),
      [1, 3],
    );
  });

  it("an entry the server answers with an error is dropped, the others are synced [R7]", async () => {
    const s = setUp();
    s.client.conversation(A, { after: 3 });
    s.client.conversation(B, { after: 5 });
    await s.connected(readyPayload({ rooms: [`group:${A}`, `group:${B}`] }));
    const refusedEntry = { conversation_id: A, messages: [], last_seq: 0, recovered: false, has_more: false, error: { code: "FORBIDDEN", message: "no" } };
    s.server.socket.answer("chat:sync", ok({ conversations: [refusedEntry, synced(B, 6, 6)] }));
    await s.tick();
    assert.deepEqual(s.events.removed, [{ conversationId: A, reason: "forbidden" }]);
    assert.deepEqual(
      s.client.conversation(B).messages.map((m) => m.seq),
      [6],
    );
    s.server.socket.drop();
    await s.tick(60_000);
    s.server.socket.accept(readyPayload({ rooms: [`group:${B}`] }));
    await s.tick();
    assert.deepEqual(s.server.socket.pending("chat:sync").at(-1)?.payload, { conversations: [{ conversation_id: B, after_seq: 6 }], limit: 100 }, "A is no longer synced");
  });

  it("a refused batch is split until the conversation at fault is alone, which is dropped [R7]", async () => {
    const s = setUp();
    s.client.conversation(A, { after: 0 });
    s.client.conversation(B, { after: 0 });
    await s.connected(readyPayload({ rooms: [] }));
    s.server.socket.answer("chat:sync", refused("FORBIDDEN"));
    await s.tick();
    const halves = s.server.socket.pending("chat:sync").map((emit) => emit.payload);
    assert.deepEqual(halves, [
      { conversations: [{ conversation_id: A, after_seq: 0 }], limit: 100 },
      { conversations: [{ conversation_id: B, after_seq: 0 }], limit: 100 },
    ]);
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 1, 1)] }));
    s.server.socket.answer("chat:sync", refused("FORBIDDEN"));
    await s.tick();
    assert.deepEqual(s.events.removed, [{ conversationId: B, reason: "forbidden" }]);
    assert.deepEqual(s.client.conversationIds(), [A]);
  });

  it("recovered: false pages the rest over REST [R6]", async () => {
    const requested: string[] = [];
    const s = setUp({
      syncLimit: 2,
      fetch: async (url) => {
        requested.push(new URL(url).search);
        const after = Number(new URL(url).searchParams.get("after_seq"));
        const items = after === 2 ? [message(A, 3), message(A, 4)] : [message(A, 5)];
        return { status: 200, json: async () => ({ success: true, data: { items, has_more: after === 2 } }) };
      },
    });
    s.client.conversation(A, { after: 0 });
    await s.connected(readyPayload({ rooms: [`group:${A}`] }));
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 1, 2, 5, false)] }));
    await s.tick();
    assert.deepEqual(requested, ["?after_seq=2&limit=200", "?after_seq=4&limit=200"]);
    assert.deepEqual(
      s.client.conversation(A).messages.map((m) => m.seq),
      [1, 2, 3, 4, 5],
    );
  });

  it("removal from a conversation stops its sync; being added starts it [R9]", async () => {
    const s = setUp();
    await s.connected(readyPayload({ rooms: [`group:${A}`] }));
    s.server.socket.answer("chat:sync", ok({ conversations: [synced(A, 1, 1, 4, false)] }));
    s.server.socket.server("conversation:participant_removed", { conversation_id: A, user_id: s.client.user?.id, by: "x" });
    s.server.socket.server("conversation:participant_added", { conversation_id: B, user_id: s.client.user?.id, by: "x" });
    await s.tick();
    assert.deepEqual(s.events.removed, [{ conversationId: A, reason: "removed" }]);
    assert.deepEqual(s.client.conversationIds(), [B]);
    assert.deepEqual(s.server.socket.pending("chat:sync").at(-1)?.payload, { conversations: [{ conversation_id: B, after_seq: 0 }], limit: 1 });
  });
});
