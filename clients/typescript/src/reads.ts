/**
 * Read state: `markRead(seq)` is sent when connected (the highest wanted seq per conversation,
 * one request in flight); unread counts come from `session:ready`, read acks and `unread:update`.
 */
import type { EventSink } from "./emitter.js";
import { ParleyError, isTransient } from "./errors.js";
import type { SessionReady, UnreadUpdate } from "./protocol.js";
import { unreadEntries } from "./recovery.js";
import type { Requester } from "./socket.js";

export interface UnreadChange {
  readonly conversationId: string;
  readonly unread: number;
  readonly total: number;
}

/** Wait before sending a read again after a transient failure without `retry_after`. */
const READ_RETRY_SECONDS = 1;

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (error: ParleyError) => void;
}

export class Reads {
  total = 0;
  private readonly unread = new Map<string, number>();
  private readonly wanted = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private readonly waiters = new Map<string, Waiter[]>();

  constructor(
    private readonly requests: Requester,
    private readonly isConnected: () => boolean,
    private readonly events: EventSink<{ unread: UnreadChange }>,
  ) {}

  unreadOf(conversationId: string): number {
    return this.unread.get(conversationId) ?? 0;
  }

  /** Mark read up to `seq`; resolves once the server has it (after a reconnect if need be). */
  markRead(conversationId: string, seq: number): Promise<void> {
    this.wanted.set(conversationId, Math.max(this.wanted.get(conversationId) ?? 0, seq));
    const done = new Promise<void>((resolve, reject) => {
      const list = this.waiters.get(conversationId) ?? [];
      list.push({ seq, resolve, reject });
      this.waiters.set(conversationId, list);
    });
    void this.flush(conversationId);
    return done;
  }

  onReady(ready: SessionReady): void {
    const entries = unreadEntries(ready.unread);
    const listed = new Set(entries.map((entry) => entry.conversation_id));
    const total = (ready.unread as { total?: unknown } | null)?.total;
    this.total = typeof total === "number" ? total : entries.reduce((sum, entry) => sum + entry.unread, 0);
    for (const id of [...this.unread.keys()]) if (!listed.has(id)) this.set(id, 0);
    for (const entry of entries) this.set(entry.conversation_id, entry.unread);
    for (const id of this.wanted.keys()) void this.flush(id);
  }

  onUpdate(update: UnreadUpdate): void {
    this.total = update.total;
    this.set(update.conversation_id, update.unread, true);
  }

  private async flush(conversationId: string): Promise<void> {
    const seq = this.wanted.get(conversationId);
    if (seq === undefined || this.inFlight.has(conversationId) || !this.isConnected()) return;
    this.inFlight.add(conversationId);
    let retryInMs: number | undefined;
    try {
      const answer = await this.requests.request("chat:read", { conversation_id: conversationId, last_read_seq: seq });
      if (this.wanted.get(conversationId) === seq) this.wanted.delete(conversationId);
      this.set(conversationId, answer.unread);
      this.settle(conversationId, (waiter) => waiter.seq <= seq, (waiter) => waiter.resolve());
    } catch (error) {
      const failure = error instanceof ParleyError ? error : new ParleyError("INTERNAL", String(error));
      if (!isTransient(failure)) {
        this.wanted.delete(conversationId);
        this.settle(conversationId, () => true, (waiter) => waiter.reject(failure));
      } else if (failure.code !== "DISCONNECTED") {
        retryInMs = (failure.retryAfter ?? READ_RETRY_SECONDS) * 1000;
      }
    } finally {
      this.inFlight.delete(conversationId);
    }
    if (retryInMs !== undefined) setTimeout(() => void this.flush(conversationId), retryInMs);
    else if (this.wanted.has(conversationId)) void this.flush(conversationId);
  }

  private settle(conversationId: string, matches: (waiter: Waiter) => boolean, finish: (waiter: Waiter) => void): void {
    const list = this.waiters.get(conversationId) ?? [];
    const done = list.filter(matches);
    this.waiters.set(conversationId, list.filter((waiter) => !matches(waiter)));
    for (const waiter of done) finish(waiter);
  }

  private set(conversationId: string, unread: number, announced = false): void {
    if (!announced && this.unread.get(conversationId) === unread) return;
    this.unread.set(conversationId, unread);
    this.events.emit("unread", { conversationId, unread, total: this.total });
  }
}
