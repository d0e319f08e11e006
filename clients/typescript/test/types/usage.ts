// Type tests: compiled with `tsc --strict` against the built package (dist/) and socket.io-client.
// Each `@ts-expect-error` must stay an error, so a loosened type fails the build.
import { type Socket, io } from "socket.io-client";

import {
  type AckData,
  type ChatSyncAck,
  type ClientToServerEvents,
  type DeliveredMessage,
  type OutboxStatus,
  ParleyClient,
  type ServerToClientEvents,
} from "../../dist/index.js";

// The generated event maps plug into socket.io-client's generics.
const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io("http://127.0.0.1:8000", { auth: { token: "t" } });

// An emit without an ack callback is allowed (its failure arrives as `exception`).
socket.emit("chat:typing", { conversation_id: "c", typing: true });
// With one, the ack is typed.
socket.emit("chat:send", { conversation_id: "c", body: "hi", client_msg_id: "m-1" }, (ack) => {
  const seq: number = ack.ok ? ack.data.message.seq : -1;
  const code: string = ack.ok ? "" : ack.error.code;
  return [seq, code];
});
socket.timeout(1000).emit("room:join", { room: "broadcast:all" }, (error, ack) => (error ? "" : ack.ok ? ack.data.room : ack.error.code));
async function withAck(): Promise<boolean> {
  // emitWithAck cannot infer the ack from an optional callback: name its type.
  const answer: ChatSyncAck = await socket.emitWithAck("chat:sync", { conversations: [{ conversation_id: "c", after_seq: 0 }] });
  return answer.ok && answer.data.conversations.every((c) => typeof c.recovered === "boolean");
}
socket.on("force_logout", (payload) => payload.reason satisfies "admin" | "duplicate_login" | "logout" | "session_revoked" | "token_expired");

// @ts-expect-error a payload field of the wrong name
socket.emit("chat:send", { conversation: "c", body: "hi", client_msg_id: "m-1" });
// @ts-expect-error an event the server does not have
socket.emit("chat:delete", { id: "x" });
// @ts-expect-error a payload is required
socket.emit("chat:read");

// The client: typed requests, server events and messages.
const client = new ParleyClient("http://127.0.0.1:8000", { getToken: async () => "token" });
async function useClient(): Promise<void> {
  const room: AckData<"room:join"> = await client.request("room:join", { room: "broadcast:all" });
  room.room satisfies string;
  // @ts-expect-error the ack of room:join has no `message`
  room.message;
  // @ts-expect-error the payload of room:join is `{room}`
  await client.request("room:join", { rooms: ["x"] });
  client.onServer("system:announcement", (announcement) => announcement.title satisfies string);
  // @ts-expect-error not an event of the server
  client.onServer("chat:send", () => undefined);
  const conversation = client.conversation("c");
  const handle = conversation.send("hello");
  const status: OutboxStatus = handle.status;
  const stored = await handle.stored;
  stored.seq satisfies number;
  conversation.onMessage((message: DeliveredMessage) => message.source satisfies "live" | "sync" | "echo");
  client.on("state", (change) => change.current satisfies "idle" | "connecting" | "connected" | "reconnecting" | "suspended" | "closed");
  void status;
}

export { useClient, withAck };
