/**
 * The one part of socket.io-client the client uses, behind a small interface: the connection runs
 * over the official client in production, over a relay to another tab, or over a scripted fake in
 * unit tests. Reconnection is the client's own (full-jitter backoff, a fresh token each time), so
 * socket.io-client's reconnection, retries and send buffer are all off.
 */
import { io, type ManagerOptions, type SocketOptions } from "socket.io-client";

import { ParleyError } from "./errors.js";
import type { AckData, AckOf, ClientEvent, PayloadOf } from "./protocol.js";

export type AnyListener = (...args: never[]) => void;

export interface SocketLike {
  readonly connected: boolean;
  connect(): void;
  disconnect(): void;
  on(event: string, listener: AnyListener): void;
  off(event: string, listener: AnyListener): void;
  onAny(listener: (event: string, ...args: unknown[]) => void): void;
  emit(event: string, payload: unknown, ack?: (response: unknown) => void): void;
  /** Forget packets queued while not connected: nothing is ever sent twice behind the client's back. */
  discardBuffered(): void;
}

/** Builds the socket for `url`; `token()` is read at every connect attempt (socket.io's `auth`). */
export type SocketFactory = (url: string, token: () => string | undefined) => SocketLike;

export type SocketIoOptions = Partial<Omit<ManagerOptions & SocketOptions, "auth" | "autoConnect" | "reconnection">>;

export function socketIoFactory(options: SocketIoOptions = {}): SocketFactory {
  return (url, token) => {
    const socket = io(url, {
      ...options,
      autoConnect: false,
      reconnection: false,
      retries: 0,
      auth: (callback) => callback({ token: token() ?? "" }),
    });
    return {
      get connected() {
        return socket.connected;
      },
      connect: () => void socket.connect(),
      disconnect: () => void socket.disconnect(),
      on: (event, listener) => void socket.on(event, listener as (...args: unknown[]) => void),
      off: (event, listener) => void socket.off(event, listener as (...args: unknown[]) => void),
      onAny: (listener) => void socket.onAny(listener),
      emit: (event, payload, ack) => void (ack === undefined ? socket.emit(event, payload) : socket.emit(event, payload, ack)),
      discardBuffered: () => {
        socket.sendBuffer = [];
      },
    };
  };
}

/** Turn an ack into its data, or a ParleyError carrying the server's code, details and rollback. */
export function ackData<E extends ClientEvent>(response: unknown): AckData<E> {
  if (typeof response === "object" && response !== null && "ok" in response) {
    const ack = response as AckOf<E> & { ok: boolean };
    if (ack.ok) return (ack as Extract<AckOf<E>, { ok: true }>).data;
    const failure = ack as { error?: { code?: unknown; message?: unknown; details?: unknown }; action?: unknown };
    const error = failure.error ?? {};
    return rejectWith(
      new ParleyError(
        typeof error.code === "string" ? error.code : "INTERNAL",
        typeof error.message === "string" ? error.message : "The server refused the request",
        isRecord(error.details) ? error.details : {},
        failure.action === "ROLLBACK",
      ),
    );
  }
  return rejectWith(new ParleyError("INTERNAL", "The server answered with something that is not an ack"));
}

function rejectWith(error: ParleyError): never {
  throw error;
}

export function isRecord(value: unknown): value is { [key: string]: unknown } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

interface PendingRequest {
  readonly reject: (error: ParleyError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * Acked requests over whichever socket is current. A request fails with `DISCONNECTED` at once
 * when not connected and when the connection drops before the ack, with `ACK_TIMEOUT` when no ack
 * comes in time; a late ack after either is ignored.
 */
export class Requester {
  private nextId = 0;
  private readonly pending = new Map<number, PendingRequest>();

  constructor(
    private readonly socket: () => SocketLike | undefined,
    private readonly timeoutMs: number,
  ) {}

  request<E extends ClientEvent>(event: E, payload: PayloadOf<E>, timeoutMs = this.timeoutMs): Promise<AckData<E>> {
    return this.raw(event, payload, timeoutMs).then((response) => ackData<E>(response));
  }

  /** The ack as the server sent it (a leader tab hands it on to the tab that asked). */
  raw(event: string, payload: unknown, timeoutMs = this.timeoutMs): Promise<unknown> {
    const socket = this.socket();
    if (socket === undefined || !socket.connected) {
      return Promise.reject(new ParleyError("DISCONNECTED", `Not connected; ${event} was not sent`));
    }
    return new Promise<unknown>((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ParleyError("ACK_TIMEOUT", `No ack for ${event} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { reject, timer });
      socket.emit(event, payload, (response) => {
        const waiting = this.pending.get(id);
        if (waiting === undefined) return;
        this.pending.delete(id);
        clearTimeout(waiting.timer);
        resolve(response);
      });
    });
  }

  /** Fail every request still waiting: its ack can no longer arrive on this connection. */
  failAll(reason: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const request of waiting) {
      clearTimeout(request.timer);
      request.reject(new ParleyError("DISCONNECTED", `Connection lost (${reason}) before the ack`));
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }
}
