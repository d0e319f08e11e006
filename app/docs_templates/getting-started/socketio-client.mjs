// Getting started with socket.io-client (v4, Node 20+ or a browser): log in, find a user, open a
// conversation, chat, recover after a reconnect, refresh the token and handle force_logout.
// Run against a server: PARLEY_URL=http://127.0.0.1:8000 node socketio-client.mjs
// [step setup]
import { io } from "socket.io-client";

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

// [step connect]
const socket = io(BASE, {
  auth: (send) => send({ token: tokens.access_token }), // asked again on every reconnect
  transports: ["websocket"],
});
socket.on("connect_error", (error) => console.log(`refused: ${error.data?.code ?? error.message}`));
const ready = await new Promise((resolve) => socket.once("session:ready", resolve));
console.log(`connected; ${ready.unread?.total ?? 0} unread`);
// [end]

// [step send-receive]
const seen = new Map([[conversation.id, conversation.last_seq]]); // the last seq shown, per conversation

function show(message) {
  const last = seen.get(message.conversation_id) ?? 0;
  if (message.seq <= last) return; // shown already (a live copy and a synced copy meet)
  if (message.seq > last + 1) return void syncAll(); // a gap: fetch what came between
  seen.set(message.conversation_id, message.seq);
  console.log(`#${message.seq} ${message.sender_id === tokens.user.id ? "me" : peer.username}: ${message.body}`);
}
socket.on("chat:message", ({ message }) => show(message));

async function send(body) {
  const payload = { conversation_id: conversation.id, body, client_msg_id: crypto.randomUUID() };
  for (;;) {
    try {
      const ack = await socket.timeout(10_000).emitWithAck("chat:send", payload);
      if (ack.ok) return show(ack.data.message);
      if (ack.error.code !== "RATE_LIMITED") throw Object.assign(new Error(ack.error.message), ack.error);
      await new Promise((resolve) => setTimeout(resolve, ack.error.details.retry_after * 1000));
    } catch (error) {
      if (error.code) throw error; // refused; a timeout retries with the same client_msg_id
    }
  }
}
await send("Hello!");
// [end]

// The peer answers over REST, as another app of theirs would.
const peerTokens = await api("/api/auth/login", { method: "POST", body: { ...PEER, device: "phone" } });
async function peerSays(body) {
  return api(`/api/conversations/${conversation.id}/messages`, { method: "POST", token: peerTokens.access_token, body: { body } });
}
const reply = new Promise((resolve) => socket.once("chat:message", resolve));
await peerSays("Hi there");
await reply;

// [step recover]
async function syncAll(unread = []) {
  for (const entry of unread) if (!seen.has(entry.conversation_id)) seen.set(entry.conversation_id, entry.last_read_seq);
  const cursors = [...seen].map(([conversation_id, after_seq]) => ({ conversation_id, after_seq }));
  const ack = await socket.timeout(10_000).emitWithAck("chat:sync", { conversations: cursors });
  if (!ack.ok) throw Object.assign(new Error(ack.error.message), ack.error);
  for (const entry of ack.data.conversations) {
    if (entry.error) seen.delete(entry.conversation_id); // gone, or no longer yours
    entry.messages.forEach(show);
    for (let more = !entry.recovered; more; ) {
      const page = await api(
        `/api/conversations/${entry.conversation_id}/messages?after_seq=${seen.get(entry.conversation_id)}&limit=200`,
        { token: tokens.access_token },
      );
      page.items.forEach(show);
      more = page.has_more;
    }
  }
}
let synced = Promise.resolve();
socket.on("session:ready", (again) => (synced = syncAll(again.unread?.conversations)));
// [end]

socket.disconnect(); // offline for a moment: the peer writes meanwhile
await peerSays("Are you there?");
const back = new Promise((resolve) => socket.once("session:ready", resolve));
socket.connect();
await back;
await synced;

// [step refresh]
const used = tokens.refresh_token;
tokens = await api("/api/auth/refresh", { method: "POST", body: { refresh_token: tokens.refresh_token } });
const renewed = await socket.timeout(10_000).emitWithAck("auth:refresh", { token: tokens.access_token });
console.log(`token renewed until ${renewed.data.expires_at}`);
// [end]

// [step force-logout]
const loggedOut = new Promise((resolve) => {
  socket.on("force_logout", async ({ reason }) => {
    if (reason === "token_expired") {
      tokens = await api("/api/auth/refresh", { method: "POST", body: { refresh_token: tokens.refresh_token } });
      return void socket.once("disconnect", () => socket.connect()); // the server closes it next
    }
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
socket.close();
