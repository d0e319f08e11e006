// Getting started with @parley/client (clients/typescript, on socket.io-client): it reconnects,
// recovers with chat:sync, refreshes tokens and retries sends by itself; the app logs in, finds a
// user, opens a conversation and reacts to what only it can decide.
// Run against a server: PARLEY_URL=http://127.0.0.1:8000 node parley-client.mjs
// [step setup]
import { ParleyClient } from "@parley/client";

const BASE = process.env.PARLEY_URL ?? "http://127.0.0.1:8000";
const ME = { username: process.env.PARLEY_USERNAME ?? "alice", password: process.env.PARLEY_PASSWORD ?? "correct-horse-42" };
const PEER = { username: process.env.PARLEY_PEER ?? "bob", password: process.env.PARLEY_PEER_PASSWORD ?? "staple-battery-42" };

/** One REST call; every answer is `{success, data, message, error: {code, message, details}, timestamp}`. */
async function api(path, { method = "GET", token, body } = {}) {
  const response = await fetch(BASE + path, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!answer.success) throw Object.assign(new Error(answer.error.message), answer.error);
  return answer.data;
}
// [end]

// [step login]
let tokens = await api("/api/auth/login", { method: "POST", body: { ...ME, device: "laptop" } });
console.log(`logged in as ${tokens.user.username}`);
// [end]

// [step find-user]
const peer = await api(`/api/users?username=${encodeURIComponent(PEER.username)}`, { token: tokens.access_token });
console.log(`found ${peer.username}`);
// [end]

// [step create-conversation]
const conversation = await api("/api/conversations", {
  method: "POST",
  token: tokens.access_token,
  body: { kind: "direct", participant_ids: [peer.id] },
});
console.log(`conversation ${conversation.id}`);
// [end]

// [step refresh]
let used = null;
async function getToken({ reason }) {
  if (reason === "refresh" || reason === "expired") {
    used = tokens.refresh_token;
    tokens = await api("/api/auth/refresh", { method: "POST", body: { refresh_token: tokens.refresh_token } });
    console.log("token renewed");
  }
  return tokens.access_token; // null would close the client (`token_unavailable`)
}
// [end]

// [step connect]
let client = new ParleyClient(BASE, { getToken, socket: { transports: ["websocket"] } });
await client.connect();
console.log("connected");
// [end]

// [step send-receive]
let chat = client.conversation(conversation.id, { after: conversation.last_seq });
const arrived = [];
const show = (m) => {
  console.log(`#${m.seq} ${m.sender_id === tokens.user.id ? "me" : peer.username}: ${m.body}`);
  arrived.push(m);
};
chat.onMessage(show); // each message once, in seq order: live, synced or the echo of a send
await chat.send("Hello!").stored; // retried with the same client_msg_id until the server has it
// [end]

// The peer answers over REST, as another app of theirs would.
const peerTokens = await api("/api/auth/login", { method: "POST", body: { ...PEER, device: "phone" } });
async function peerSays(body) {
  const count = arrived.length;
  await api(`/api/conversations/${conversation.id}/messages`, { method: "POST", token: peerTokens.access_token, body: { body } });
  return count;
}
async function shown(count) {
  while (arrived.length <= count) await new Promise((resolve) => setTimeout(resolve, 20));
}
await shown(await peerSays("Hi there"));

// [step recover]
// Reconnects sync by themselves. After a restart of the app, start from the last seq it stored:
const last = arrived.at(-1).seq;
client.close();
// … later, in a new process:
client = new ParleyClient(BASE, { getToken, socket: { transports: ["websocket"] } });
chat = client.conversation(conversation.id, { after: last });
chat.onMessage(show);
client.on("gap", (gap) => console.log(`messages ${gap.from}–${gap.to} could not be recovered`));
// [end]
const offline = await peerSays("Are you there?"); // written while the app was closed
await client.connect();
await shown(offline);

await client.request("auth:refresh", { token: await getToken({ reason: "refresh" }) });

// [step force-logout]
const loggedOut = new Promise((resolve) => {
  client.on("state", ({ current, reason }) => {
    if (current !== "closed") return; // token_expired is handled inside: it reconnects with getToken
    console.log(`logged out: ${reason}`); // duplicate_login, logout, admin, session_revoked
    tokens = null; // forget them, show the login screen; never log in again by itself
    resolve(reason);
  });
});
// [end]

await api("/api/auth/login", { method: "POST", body: { ...ME, device: "laptop" } }); // the same device again
await loggedOut;
try {
  await api("/api/auth/refresh", { method: "POST", body: { refresh_token: used } });
} catch (error) {
  console.log(`a used refresh token is refused: ${error.code}`);
}
