/**
 * A scripted socket for unit tests: the test plays the server. It sees what the client emits,
 * answers acks when it chooses, accepts or refuses connects, drops the connection, sends events.
 */
import type { SessionReady } from "../../src/protocol.js";
import type { AnyListener, SocketFactory, SocketLike } from "../../src/socket.js";

export interface Emitted {
  readonly event: string;
  readonly payload: unknown;
  readonly ack: ((response: unknown) => void) | undefined;
}

export const USER_ID = "00000000-0000-4000-8000-00000000000a";

export function readyPayload(overrides: Partial<SessionReady> = {}): SessionReady {
  return {
    user: { id: USER_ID, username: "alice", display_name: "Alice" },
    session_id: "s-1",
    rooms: [`user:${USER_ID}`],
    server_time: new Date().toISOString(),
    unread: { conversations: [], total: 0, notifications: 0, more: false, next_cursor: null },
    announcements: [],
    limits: { max_payload_bytes: 65536, rate_limits: {}, max_rooms: 500, typing_ttl: 6, presence_ttl: 30 },
    ...overrides,
  };
}

export class FakeSocket implements SocketLike {
  connected = false;
  /** The token read at each connect attempt. */
  readonly tokens: (string | undefined)[] = [];
  readonly emitted: Emitted[] = [];
  private readonly listeners = new Map<string, Set<AnyListener>>();
  private readonly anyListeners = new Set<(event: string, ...args: unknown[]) => void>();

  constructor(private readonly token: () => string | undefined) {}

  connect(): void {
    this.tokens.push(this.token());
  }

  disconnect(): void {
    if (!this.connected) return;
    this.connected = false;
    this.fire("disconnect", "io client disconnect");
  }

  on(event: string, listener: AnyListener): void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
  }

  off(event: string, listener: AnyListener): void {
    this.listeners.get(event)?.delete(listener);
  }

  onAny(listener: (event: string, ...args: unknown[]) => void): void {
    this.anyListeners.add(listener);
  }

  emit(event: string, payload: unknown, ack?: (response: unknown) => void): void {
    this.emitted.push({ event, payload, ack });
  }

  discardBuffered(): void {}

  /** The server accepts the connect and sends `session:ready`. */
  accept(ready: SessionReady = readyPayload()): void {
    this.open();
    this.server("session:ready", ready);
  }

  /** The server accepts the connect; `session:ready` is still to come. */
  open(): void {
    this.connected = true;
    this.fire("connect");
  }

  refuse(code: string | undefined, message = "refused"): void {
    this.fire("connect_error", Object.assign(new Error(message), code === undefined ? {} : { data: { code, message } }));
  }

  drop(reason = "transport close"): void {
    this.connected = false;
    this.fire("disconnect", reason);
  }

  server(event: string, payload: unknown): void {
    this.fire(event, payload);
    for (const listener of [...this.anyListeners]) listener(event, payload);
  }

  /** Emits of `event` not answered yet, oldest first. */
  pending(event: string): Emitted[] {
    return this.emitted.filter((emit) => emit.event === event && emit.ack !== undefined);
  }

  /** Answer the oldest unanswered emit of `event`. */
  answer(event: string, response: unknown): Emitted {
    const index = this.emitted.findIndex((emit) => emit.event === event && emit.ack !== undefined);
    const emit = this.emitted[index];
    if (emit === undefined) throw new Error(`nothing emitted as ${event} to answer`);
    this.emitted.splice(index, 1);
    emit.ack?.(response);
    return emit;
  }

  private fire(event: string, ...args: unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) (listener as (...values: unknown[]) => void)(...args);
  }
}

/** A socket factory that keeps every socket it made; `socket` is the latest. */
export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  readonly factory: SocketFactory = (_url, token) => {
    const socket = new FakeSocket(token);
    this.sockets.push(socket);
    return socket;
  };

  get socket(): FakeSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error("no socket made yet");
    return socket;
  }
}

export function ok(data: unknown): unknown {
  return { ok: true, data };
}

export function refused(code: string, details: { [key: string]: unknown } = {}, rollback = false): unknown {
  return { ok: false, error: { code, message: code.toLowerCase(), details }, ...(rollback ? { action: "ROLLBACK" } : {}) };
}

export function message(conversationId: string, seq: number, extra: { client_msg_id?: string; sender_id?: string } = {}) {
  return {
    id: `${conversationId}-m${seq}`,
    conversation_id: conversationId,
    seq,
    sender_id: extra.sender_id ?? "00000000-0000-4000-8000-0000000000bb",
    kind: "text" as const,
    body: `message ${seq}`,
    client_msg_id: extra.client_msg_id ?? null,
    created_at: "2026-11-30T00:00:00Z",
  };
}

/** A JWT the client can read (`exp`, `sub`); unsigned, as the fake server checks nothing. */
export function fakeToken(expSeconds: number, sub = USER_ID): string {
  const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "HS256" })}.${encode({ sub, exp: expSeconds })}.signature`;
}
