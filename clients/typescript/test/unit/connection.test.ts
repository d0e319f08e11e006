/** The connection's states, backoff, tokens and force_logout, on a scripted socket with fake timers. */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";

import { fullJitter } from "../../src/backoff.js";
import { fakeToken, ok, readyPayload, refused } from "../support/fake-socket.js";
import { START, type Stage, stage } from "../support/harness.js";

let current: Stage | undefined;
function setUp(...args: Parameters<typeof stage>): Stage {
  current = stage(...args);
  return current;
}
afterEach(() => current?.done());

describe("backoff [C2]", () => {
  it("draws uniformly below min(max, base·2^attempt)", () => {
    const options = { baseMs: 500, maxMs: 20_000 };
    assert.equal(fullJitter(0, options, () => 0.999), 499);
    assert.equal(fullJitter(3, options, () => 0.5), 2000);
    assert.equal(fullJitter(10, options, () => 0.5), 10_000);
    assert.equal(fullJitter(10, options, () => 0), 0);
  });
});

describe("connection states", () => {
  it("idle → connecting → connected ⇄ reconnecting, each change once with its reason [C1 C2]", async () => {
    const s = setUp({ backoff: { baseMs: 1000, maxMs: 8000 } });
    assert.equal(s.client.state, "idle");
    await s.connected();
    s.server.socket.drop("transport close");
    await s.tick();
    assert.equal(s.server.socket.tokens.length, 1);
    await s.tick(499); // attempt 0 waits half of 1,000 ms (random() = 0.5)
    assert.equal(s.server.socket.tokens.length, 1);
    await s.tick(1);
    assert.equal(s.server.socket.tokens.length, 2);
    s.server.socket.refuse(undefined, "xhr poll error");
    await s.tick(999); // attempt 1 waits half of 2,000 ms
    assert.equal(s.server.socket.tokens.length, 2);
    await s.tick(1);
    assert.equal(s.server.socket.tokens.length, 3);
    s.server.socket.accept();
    await s.tick();
    assert.deepEqual(s.states, [
      "idle>connecting:connect",
      "connecting>connected:connected",
      "connected>reconnecting:transport close",
      "reconnecting>connected:connected",
    ]);
    assert.equal(s.server.sockets.length, 1, "one socket, connected again; nothing of socket.io's own reconnection");
  });

  it("suspended after suspendAfterMs offline, connected again on success [C3]", async () => {
    const s = setUp({ suspendAfterMs: 10_000, backoff: { baseMs: 1000, maxMs: 1000 } });
    await s.connected();
    s.server.socket.drop();
    for (let i = 0; i < 12; i++) {
      await s.tick(1000);
      s.server.socket.refuse(undefined, "websocket error");
    }
    assert.equal(s.client.state, "suspended");
    await s.tick(1000);
    s.server.socket.accept();
    await s.tick();
    assert.deepEqual(s.states.slice(-2), ["reconnecting>suspended:offline_too_long", "suspended>connected:connected"]);
  });

  it("online, pageshow and visible attempt at once while reconnecting [C4]", async () => {
    const s = setUp({ backoff: { baseMs: 60_000, maxMs: 60_000 } });
    await s.connected();
    s.server.socket.drop();
    await s.tick(10);
    assert.equal(s.server.socket.tokens.length, 1);
    s.wake("online");
    await s.tick();
    assert.equal(s.server.socket.tokens.length, 2);
    s.wake("visible"); // an attempt is already on its way: no second one
    await s.tick();
    assert.equal(s.server.socket.tokens.length, 2);
    s.server.socket.accept();
    await s.tick();
    s.wake("pageshow"); // connected: nothing to do
    await s.tick();
    assert.equal(s.server.socket.tokens.length, 2);
  });

  it("connect_error UNAUTHORIZED or SESSION_REVOKED closes; others retry [C6]", async () => {
    const s = setUp();
    await s.client.connect();
    await s.tick();
    s.server.socket.refuse("UNAVAILABLE");
    await s.tick(60_000);
    assert.equal(s.client.state, "reconnecting");
    s.server.socket.refuse("SESSION_REVOKED");
    await s.tick(60_000);
    assert.equal(s.client.state, "closed");
    assert.equal(s.states.at(-1), "reconnecting>closed:session_revoked");
    assert.equal(s.server.socket.tokens.length, 2);
  });
});

describe("tokens", () => {
  it("getToken before every connect; null closes with token_unavailable [T1]", async () => {
    let calls = 0;
    const s = setUp({ getToken: () => (++calls < 2 ? fakeToken(START / 1000 + 3600) : null) });
    await s.connected();
    s.server.socket.drop();
    await s.tick(60_000);
    assert.equal(s.client.state, "closed");
    assert.equal(s.states.at(-1), "reconnecting>closed:token_unavailable");
  });

  it("a getToken that throws is reported and retried [T1]", async () => {
    let calls = 0;
    const s = setUp({
      getToken: () => {
        calls++;
        if (calls === 1) throw new Error("identity provider down");
        return fakeToken(START / 1000 + 3600);
      },
    });
    await s.client.connect();
    await s.tick(60_000);
    assert.equal(s.errors[0]?.message, "identity provider down");
    assert.equal(s.server.socket.tokens.length, 1, "the second call gave a token");
    s.server.socket.accept();
    await s.tick();
    assert.equal(s.client.state, "connected");
  });

  it("auth:refresh with a fresh token before expiry, on the server's clock [T2]", async () => {
    let version = 0;
    const s = setUp({ getToken: () => fakeToken(START / 1000 + 300 + 300 * version++), refreshSkewMs: 60_000 });
    await s.client.connect();
    await s.tick();
    // The server's clock is 30 s ahead: the refresh is due 30 s earlier in local time.
    s.server.socket.accept({ ...readyPayload(), server_time: new Date(START + 30_000).toISOString() });
    await s.tick(300_000 - 60_000 - 30_000 - 1000);
    assert.deepEqual(s.server.socket.pending("auth:refresh"), []);
    await s.tick(1000);
    const [refresh] = s.server.socket.pending("auth:refresh");
    assert.ok(refresh !== undefined, "auth:refresh was sent");
    assert.equal((refresh.payload as { token: string }).token, fakeToken(START / 1000 + 300 + 300));
    s.server.socket.answer("auth:refresh", ok({ expires_at: new Date(START + 900_000).toISOString() }));
    await s.tick();
    assert.equal(s.client.state, "connected");
  });

  it("force_logout token_expired reconnects at once with a new token [T3]", async () => {
    const s = setUp();
    await s.connected();
    s.server.socket.server("force_logout", { reason: "token_expired", message: "expired" });
    s.server.socket.drop("io server disconnect");
    await s.tick();
    assert.equal(s.server.socket.tokens.length, 2);
    assert.equal(s.states.at(-1), "connected>reconnecting:token_expired");
  });

  for (const reason of ["duplicate_login", "logout", "admin", "session_revoked"]) {
    it(`force_logout ${reason} closes with that reason and never reconnects [T4]`, async () => {
      const s = setUp();
      await s.connected();
      s.server.socket.server("force_logout", { reason, message: reason });
      s.server.socket.drop("io server disconnect");
      await s.tick(120_000);
      assert.equal(s.states.at(-1), `connected>closed:${reason}`);
      assert.equal(s.server.socket.tokens.length, 1);
    });
  }

  it("a refused auth:refresh with SESSION_REVOKED closes [T2]", async () => {
    let version = 0;
    const s = setUp({ getToken: () => fakeToken(START / 1000 + 120 + 300 * version++) });
    await s.connected();
    await s.tick(60_000);
    s.server.socket.answer("auth:refresh", refused("SESSION_REVOKED"));
    await s.tick();
    assert.equal(s.states.at(-1), "connected>closed:session_revoked");
  });
});

describe("listener errors [X3]", () => {
  it("an exception thrown by an app listener becomes an error event and changes nothing", async () => {
    const s = setUp();
    s.client.on("state", () => {
      throw new Error("app bug");
    });
    await s.connected();
    assert.equal(s.client.state, "connected");
    assert.ok(s.errors.some((error) => error.name === "ListenerError" && error.message.includes("app bug")));
  });
});
