/**
 * Token lifetime against a real server whose access tokens live 4 s: refreshed before expiry
 * over `auth:refresh`, or, when the app offers no fresher token, `force_logout` token_expired and
 * a reconnect with a new one.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ParleyClient, type TokenRequest } from "../../src/index.js";
import { createGroup, refresh, signUp } from "../support/api.js";
import { ParleyServer } from "../support/server.js";
import { reaches } from "../support/wait.js";

const TTL_SECONDS = 4;
let server: ParleyServer;
const clients: ParleyClient[] = [];

before(async () => {
  server = await ParleyServer.start({ ACCESS_TOKEN_TTL: String(TTL_SECONDS) });
});

after(async () => {
  for (const made of clients) made.close();
  await server.dispose();
});

describe("token lifetime", () => {
  it("refreshes before expiry and stays connected past several lifetimes [T1 T2]", async () => {
    const alice = await signUp(server.url, "alice");
    const bob = await signUp(server.url, "bob");
    const conversationId = await createGroup(server.url, alice, [bob]);
    let refreshes = 0;
    let thirdRefresh!: () => void;
    const refreshedThrice = new Promise<void>((resolve) => (thirdRefresh = resolve));
    const a = new ParleyClient(server.url, {
      getToken: async (request) => {
        if (request.reason !== "refresh") return alice.accessToken;
        const token = await refresh(server.url, alice);
        if (++refreshes === 3) thirdRefresh();
        return token;
      },
      socket: { transports: ["websocket"] },
      refreshSkewMs: 1500,
    });
    clients.push(a);
    const changes: string[] = [];
    a.on("state", (change) => changes.push(change.current));
    const ready = new Promise((resolve) => a.once("ready", resolve));
    await a.connect();
    await ready;
    // Three refreshes take the socket past two token lifetimes; without auth:refresh the server
    // would have sent force_logout at the first expiry.
    await refreshedThrice;
    const sent = await a.conversation(conversationId).send("still here").stored;
    assert.equal(sent.body, "still here");
    assert.deepEqual(changes, ["connecting", "connected"]);
    assert.equal(a.state, "connected");
  });

  it("with no fresher token, force_logout token_expired reconnects with a new one [T3]", async () => {
    const alice = await signUp(server.url, "alice");
    const reasons: TokenRequest["reason"][] = [];
    let current = alice.accessToken;
    const a = new ParleyClient(server.url, {
      // At `refresh` the app hands back the same token (it has no fresher one), so the socket expires.
      getToken: async (request) => {
        reasons.push(request.reason);
        if (request.reason === "expired") current = await refresh(server.url, alice);
        return current;
      },
      socket: { transports: ["websocket"] },
    });
    clients.push(a);
    await a.connect();
    await reaches(a, "connected");
    const lost = await reaches(a, "reconnecting", 3 * TTL_SECONDS * 1000);
    assert.equal(lost.reason, "token_expired");
    const back = await reaches(a, "connected");
    assert.equal(back.reason, "connected");
    assert.ok(reasons.includes("expired"), `getToken reasons: ${reasons.join(",")}`);
  });
});
