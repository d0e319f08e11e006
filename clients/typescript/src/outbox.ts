/**
 * The outbox: messages the app sent, kept until the server has stored them.
 *
 * `send` picks the `client_msg_id` before the first attempt and stores the entry; every retry
 * reuses it, so the server stores the message once however often it is sent. Entries go only
 * while connected, one in flight per conversation (in order), conversations in parallel.
 * `RATE_LIMITED` waits `retry_after`; a lost ack, `UNAVAILABLE` and other transient failures retry
 * with backoff; `VALIDATION_ERROR`, `FORBIDDEN`, `NOT_FOUND` and `PAYLOAD_TOO_LARGE` fail the entry
 * and ask the app to roll back. The stored message arriving by live traffic or sync resolves the
 * entry as well as its ack does.
 */
import { type BackoffOptions, fullJitter } from "./backoff.js";
import { Emitter, type EventSink, type Unsubscribe } from "./emitter.js";
import { ParleyError, isTransient } from "./errors.js";
import type { OutboxRecord, OutboxStore } from "./outbox-store.js";
import type { MessageOut } from "./protocol.js";
import type { Requester } from "./socket.js";

export type OutboxStatus = "queued" | "sending" | "sent" | "failed" | "cancelled";

/** A change of an entry's status: the `outbox` event, and what a leader tab tells the others. */
export interface OutboxUpdate {
  readonly record: OutboxRecord;
  readonly status: OutboxStatus;
  readonly message?: MessageOut;
}

export type OutboxCommand = "retry" | "cancel";

const APPLY = Symbol("apply");
const RETRY_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

interface Settle {
  readonly promise: Promise<MessageOut>;
  readonly resolve: (message: MessageOut) => void;
  readonly reject: (error: ParleyError) => void;
}

function settlement(): Settle {
  let resolve!: (message: MessageOut) => void;
  let reject!: (error: ParleyError) => void;
  const promise = new Promise<MessageOut>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  // The app may never look at `stored`; a failure must not become an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** What the app holds for one sent message. */
export class OutboxHandle {
  private current: OutboxStatus;
  private failure: ParleyError | undefined;
  private storedMessage: MessageOut | undefined;
  private settle = settlement();
  private readonly emitter: Emitter<{ status: OutboxStatus }>;

  constructor(
    private state: OutboxRecord,
    private readonly commands: (clientMsgId: string, command: OutboxCommand) => boolean,
    onListenerError: (error: unknown, event: string) => void,
  ) {
    this.current = state.status;
    this.emitter = new Emitter(onListenerError);
  }

  /** The entry as stored (attempts, creation time, last error). */
  get record(): OutboxRecord {
    return this.state;
  }
  get clientMsgId(): string {
    return this.state.clientMsgId;
  }
  get conversationId(): string {
    return this.state.conversationId;
  }
  get body(): string {
    return this.state.body;
  }
  get status(): OutboxStatus {
    return this.current;
  }
  /** Why it failed; `rollback` is true when the app should undo its optimistic display. */
  get error(): ParleyError | undefined {
    return this.failure;
  }
  get message(): MessageOut | undefined {
    return this.storedMessage;
  }
  /**
   * The stored message. Rejects with the ParleyError when the entry fails or is cancelled;
   * `retry()` starts a new one.
   */
  get stored(): Promise<MessageOut> {
    return this.settle.promise;
  }

  /** Send a failed entry again, with the same `client_msg_id`. False unless it had failed. */
  retry(): boolean {
    return this.commands(this.clientMsgId, "retry");
  }

  /** Give up an entry not sent yet (queued or failed). False once it is in flight or sent. */
  cancel(): boolean {
    return this.commands(this.clientMsgId, "cancel");
  }

  onStatus(listener: (status: OutboxStatus) => void): Unsubscribe {
    return this.emitter.on("status", listener);
  }

  [APPLY](update: OutboxUpdate): void {
    this.state = update.record;
    if (this.current === "sent" || this.current === "cancelled" || update.status === this.current) return;
    if (this.current === "failed") this.settle = settlement();
    this.current = update.status;
    const error = update.record.error;
    this.failure = update.status === "failed" && error !== undefined ? new ParleyError(error.code, error.message, {}, error.rollback) : undefined;
    if (update.status === "sent" && update.message !== undefined) {
      this.storedMessage = update.message;
      this.settle.resolve(update.message);
    } else if (update.status === "cancelled") {
      this.settle.reject(new ParleyError("CANCELLED", "The message was cancelled before it was sent"));
    } else if (this.failure !== undefined) {
      this.settle.reject(this.failure);
    }
    this.emitter.emit("status", update.status);
  }
}

export interface OutboxDeps {
  readonly requests: Requester;
  /** True while this tab may send (connected, and holding the connection). */
  readonly canSend: () => boolean;
  /** The signed-in user, to match stored messages to entries by sender and `client_msg_id`. */
  readonly userId: () => string | undefined;
  /** The stored message of an acked entry, for the conversation's timeline. */
  readonly onStored: (message: MessageOut) => void;
  readonly events: EventSink<{ outbox: OutboxUpdate; error: Error }>;
  readonly onListenerError: (error: unknown, event: string) => void;
  readonly maxAgeMs: number;
  readonly ackTimeoutMs: number;
  readonly random: () => number;
  readonly newId: () => string;
}

/** How a tab that does not hold the connection reaches the one that does. */
export interface OutboxRelay {
  add(record: OutboxRecord): void;
  command(clientMsgId: string, command: OutboxCommand): void;
}

interface RecordChanges {
  readonly attempts?: number;
  readonly createdAt?: number;
  readonly error?: OutboxRecord["error"] | undefined;
}

interface Lane {
  busy: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  failures: number;
}

export class Outbox {
  private store: OutboxStore | undefined;
  private readonly handles = new Map<string, OutboxHandle>();
  private readonly lanes = new Map<string, Lane>();
  private nextOrder = 0;
  private relay: OutboxRelay | undefined;

  constructor(private readonly deps: OutboxDeps) {}

  /** Open the store of the signed-in user: entries left by an earlier page or tab come back queued. */
  async open(store: OutboxStore): Promise<void> {
    this.store = store;
    const unsaved = [...this.handles.values()].map((handle) => handle.record);
    for (const record of unsaved) await this.persist(record, record.status);
    const records = (await store.load()).sort((a, b) => a.order - b.order);
    for (const record of records) this.adopt(record);
    this.kickAll();
  }

  /** Tabs: relay sends and commands to the tab holding the connection, or (undefined) send here. */
  setRelay(relay: OutboxRelay | undefined): void {
    this.relay = relay;
    if (relay === undefined) this.kickAll();
  }

  send(conversationId: string, body: string): OutboxHandle {
    const record: OutboxRecord = {
      clientMsgId: this.deps.newId(),
      conversationId,
      body,
      createdAt: Date.now(),
      order: Math.max(Date.now() * 1000, this.nextOrder),
      status: "queued",
      attempts: 0,
    };
    // Stored before the first attempt: a reload from here on finds it.
    const handle = this.adopt(record, false);
    void this.persist(record, "queued").then(() => {
      if (this.relay !== undefined) this.relay.add(record);
      else this.kick(conversationId);
    });
    return handle;
  }

  /** Entries not yet sent, oldest first; of one conversation if given. */
  pending(conversationId?: string): OutboxHandle[] {
    return [...this.handles.values()]
      .filter((handle) => conversationId === undefined || handle.conversationId === conversationId)
      .filter((handle) => handle.status !== "sent" && handle.status !== "cancelled")
      .sort((a, b) => a.record.order - b.record.order);
  }

  /** Take an entry known elsewhere (loaded, or added by another tab); returns its handle. */
  adopt(record: OutboxRecord, startSending = true): OutboxHandle {
    const known = this.handles.get(record.clientMsgId);
    if (known !== undefined) return known;
    const status = record.status === "sending" ? "queued" : record.status;
    const handle = new OutboxHandle({ ...record, status }, (id, command) => this.command(id, command), this.deps.onListenerError);
    this.handles.set(record.clientMsgId, handle);
    this.nextOrder = Math.max(this.nextOrder, record.order + 1);
    if (startSending && this.relay === undefined) this.kick(record.conversationId);
    return handle;
  }

  /** A status decided by the tab holding the connection. */
  applyUpdate(update: OutboxUpdate): void {
    const handle = this.adopt(update.record);
    this.finishIfDone(handle, update);
  }

  /** A stored message seen in live traffic or a sync: it settles the entry with its `client_msg_id`. */
  resolve(message: MessageOut): void {
    if (message.client_msg_id === null || message.sender_id !== this.deps.userId()) return;
    const handle = this.handles.get(message.client_msg_id);
    if (handle === undefined || handle.conversationId !== message.conversation_id) return;
    if (handle.status === "sent" || handle.status === "cancelled" || this.relay !== undefined) return;
    this.update(handle, "sent", {}, message);
  }

  command(clientMsgId: string, command: OutboxCommand): boolean {
    const handle = this.handles.get(clientMsgId);
    if (handle === undefined) return false;
    const allowed = command === "retry" ? handle.status === "failed" : handle.status === "queued" || handle.status === "failed";
    if (!allowed) return false;
    if (this.relay !== undefined) {
      this.relay.command(clientMsgId, command);
      return true;
    }
    if (command === "cancel") {
      this.update(handle, "cancelled", {});
    } else {
      this.update(handle, "queued", { attempts: 0, createdAt: Date.now(), error: undefined });
      this.kick(handle.conversationId);
    }
    return true;
  }

  /** Start sending wherever a conversation has a queued entry and nothing in flight. */
  kickAll(): void {
    for (const conversationId of new Set(this.pending().map((handle) => handle.conversationId))) this.kick(conversationId);
  }

  private kick(conversationId: string): void {
    if (this.relay !== undefined || this.store === undefined || !this.deps.canSend()) return;
    const lane = this.lane(conversationId);
    if (lane.busy || lane.timer !== undefined) return;
    const next = this.pending(conversationId).find((handle) => handle.status === "queued");
    if (next === undefined) return;
    lane.busy = true;
    void this.attempt(next, lane).finally(() => {
      lane.busy = false;
      this.kick(conversationId);
    });
  }

  private async attempt(handle: OutboxHandle, lane: Lane): Promise<void> {
    const record = handle.record;
    if (Date.now() - record.createdAt > this.deps.maxAgeMs) {
      this.fail(handle, new ParleyError("EXPIRED", "The message was not sent in time", {}, true));
      return;
    }
    this.update(handle, "sending", { attempts: record.attempts + 1 });
    let message: MessageOut;
    try {
      const data = await this.deps.requests.request(
        "chat:send",
        { conversation_id: record.conversationId, body: record.body, client_msg_id: record.clientMsgId },
        this.deps.ackTimeoutMs,
      );
      message = data.message;
    } catch (error) {
      this.failed(handle, lane, error);
      return;
    }
    lane.failures = 0;
    if (handle.status === "sending") this.update(handle, "sent", {}, message);
    this.deps.onStored(message);
  }

  private failed(handle: OutboxHandle, lane: Lane, error: unknown): void {
    if (handle.status !== "sending") return;
    const failure = error instanceof ParleyError ? error : new ParleyError("INTERNAL", String(error));
    if (!isTransient(failure)) {
      this.fail(handle, new ParleyError(failure.code, failure.message, failure.details, true));
      return;
    }
    this.update(handle, "queued", {});
    if (failure.code === "DISCONNECTED") return;
    // RATE_LIMITED is flow control, not a fault: it only waits.
    if (failure.code !== "RATE_LIMITED") this.deps.events.emit("error", failure);
    const wait = failure.retryAfter !== undefined ? failure.retryAfter * 1000 : fullJitter(lane.failures++, RETRY_BACKOFF, this.deps.random);
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.kick(handle.conversationId);
    }, wait);
  }

  private fail(handle: OutboxHandle, error: ParleyError): void {
    this.update(handle, "failed", { error: { code: error.code, message: error.message, rollback: error.rollback } });
  }

  private update(handle: OutboxHandle, status: OutboxStatus, changes: RecordChanges, message?: MessageOut): void {
    const { error: previousError, ...base } = handle.record;
    const error = "error" in changes ? changes.error : previousError;
    const record: OutboxRecord = {
      ...base,
      attempts: changes.attempts ?? base.attempts,
      createdAt: changes.createdAt ?? base.createdAt,
      status: status === "queued" || status === "sending" || status === "failed" ? status : base.status,
      ...(error === undefined ? {} : { error }),
    };
    const update: OutboxUpdate = message === undefined ? { record, status } : { record, status, message };
    this.finishIfDone(handle, update);
    void this.persist(record, status);
    this.deps.events.emit("outbox", update);
  }

  private finishIfDone(handle: OutboxHandle, update: OutboxUpdate): void {
    handle[APPLY](update);
    if (update.status === "sent" || update.status === "cancelled") this.handles.delete(handle.clientMsgId);
  }

  private async persist(record: OutboxRecord, status: OutboxStatus): Promise<void> {
    if (this.store === undefined) return;
    try {
      if (status === "sent" || status === "cancelled") await this.store.delete(record.clientMsgId);
      else await this.store.put(record);
    } catch (error) {
      this.deps.events.emit("error", error instanceof Error ? error : new Error(String(error)));
    }
  }

  private lane(conversationId: string): Lane {
    let lane = this.lanes.get(conversationId);
    if (lane === undefined) {
      lane = { busy: false, timer: undefined, failures: 0 };
      this.lanes.set(conversationId, lane);
    }
    return lane;
  }
}
