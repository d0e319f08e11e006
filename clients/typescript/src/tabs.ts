/**
 * One connection for all tabs of a user: the tab holding a Web Lock holds the socket and drains
 * the outbox; the others reach the server through it over a BroadcastChannel. When the holder
 * closes, the lock passes to another tab, which connects itself and takes the outbox over.
 *
 * A follower tab runs the same client over a `RelaySocket`: the leader forwards every server
 * event, answers relayed requests with the server's ack, and tells its connection state.
 */
import type { ConnectionState } from "./connection.js";
import type { OutboxRecord } from "./outbox-store.js";
import type { OutboxCommand, OutboxUpdate } from "./outbox.js";
import type { SessionReady } from "./protocol.js";
import type { AnyListener, SocketFactory, SocketLike } from "./socket.js";

export type TabMessage =
  | { readonly type: "hello"; readonly from: string }
  | { readonly type: "leader"; readonly from: string; readonly state: ConnectionState; readonly ready: SessionReady | null }
  | { readonly type: "event"; readonly from: string; readonly event: string; readonly args: unknown[] }
  | {
      readonly type: "request";
      readonly from: string;
      readonly id: number;
      readonly event: string;
      readonly payload: unknown;
      /** False for an emit without an ack callback: the leader sends it the same way. */
      readonly acked: boolean;
    }
  | { readonly type: "response"; readonly from: string; readonly to: string; readonly id: number; readonly response: unknown }
  | { readonly type: "outbox-add"; readonly from: string; readonly record: OutboxRecord }
  | { readonly type: "outbox-command"; readonly from: string; readonly clientMsgId: string; readonly command: OutboxCommand }
  | { readonly type: "outbox-update"; readonly from: string; readonly update: OutboxUpdate };

/** Whether this environment can share one connection between tabs. */
export function canShareTabs(): boolean {
  const nav = (globalThis as { navigator?: { locks?: unknown } }).navigator;
  return typeof BroadcastChannel === "function" && typeof nav?.locks === "object" && nav.locks !== null;
}

export class TabChannel {
  readonly tabId = randomId();
  private readonly channel: BroadcastChannel;
  private readonly listeners = new Set<(message: TabMessage) => void>();
  private releaseLock: (() => void) | undefined;
  private closed = false;

  constructor(private readonly namespace: string) {
    this.channel = new BroadcastChannel(`parley:${namespace}`);
    this.channel.onmessage = (event: MessageEvent<TabMessage>) => {
      for (const listener of [...this.listeners]) listener(event.data);
    };
  }

  /** Resolves true if this tab holds the connection now; `onPromoted` runs if it gets it later. */
  async claim(onPromoted: () => void): Promise<boolean> {
    const locks = (navigator as Navigator & { locks: LockManager }).locks;
    const name = `parley:${this.namespace}:connection`;
    const hold = (): Promise<void> =>
      new Promise<void>((release) => {
        this.releaseLock = release;
      });
    const now = await new Promise<boolean>((resolve) => {
      void locks.request(name, { ifAvailable: true }, async (lock) => {
        resolve(lock !== null);
        if (lock !== null) await hold();
      });
    });
    if (!now && !this.closed) {
      void locks.request(name, async () => {
        if (this.closed) return;
        onPromoted();
        await hold();
      });
    }
    return now;
  }

  post(message: TabMessage): void {
    if (!this.closed) this.channel.postMessage(message);
  }

  onMessage(listener: (message: TabMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.releaseLock?.();
    this.listeners.clear();
    this.channel.close();
  }
}

/** A follower tab's socket: the leader tab's connection, seen through the channel. */
export function relaySocketFactory(channel: TabChannel): SocketFactory {
  return () => new RelaySocket(channel);
}

class RelaySocket implements SocketLike {
  connected = false;
  private wanted = false;
  private nextId = 0;
  private readonly acks = new Map<number, (response: unknown) => void>();
  private readonly listeners = new Map<string, Set<AnyListener>>();
  private readonly anyListeners = new Set<(event: string, ...args: unknown[]) => void>();
  private readonly unsubscribe: () => void;

  constructor(private readonly channel: TabChannel) {
    this.unsubscribe = channel.onMessage((message) => this.receive(message));
  }

  connect(): void {
    this.wanted = true;
    this.channel.post({ type: "hello", from: this.channel.tabId });
  }

  /** Final: the client disconnects a socket only when it closes or moves to its own socket. */
  disconnect(): void {
    this.wanted = false;
    this.unsubscribe();
    this.drop("io client disconnect");
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
    if (!this.connected) return;
    const id = this.nextId++;
    if (ack !== undefined) this.acks.set(id, ack);
    this.channel.post({ type: "request", from: this.channel.tabId, id, event, payload, acked: ack !== undefined });
  }

  discardBuffered(): void {
    this.acks.clear();
  }

  private receive(message: TabMessage): void {
    if (message.type === "leader") {
      if (message.state === "connected" && this.wanted && !this.connected) {
        this.connected = true;
        this.dispatch("connect", []);
        if (message.ready !== null) this.dispatch("session:ready", [message.ready], true);
      } else if (message.state !== "connected") {
        this.drop(`leader ${message.state}`);
      }
    } else if (message.type === "event" && this.connected) {
      this.dispatch(message.event, message.args, true);
    } else if (message.type === "response" && message.to === this.channel.tabId) {
      const ack = this.acks.get(message.id);
      this.acks.delete(message.id);
      ack?.(message.response);
    }
  }

  private drop(reason: string): void {
    if (!this.connected) return;
    this.connected = false;
    this.acks.clear();
    this.dispatch("disconnect", [reason]);
  }

  private dispatch(event: string, args: unknown[], fromServer = false): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) (listener as (...values: unknown[]) => void)(...args);
    if (fromServer) for (const listener of [...this.anyListeners]) listener(event, ...args);
  }
}

function randomId(): string {
  return typeof crypto.randomUUID === "function" ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}
