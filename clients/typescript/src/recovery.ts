/**
 * Recovery: every conversation's timeline kept gap-free across reconnects.
 *
 * - On every `session:ready`, one batched `chat:sync` from each timeline's cursor (100 per call,
 *   the server's maximum); conversations met for the first time are placed first, at the unread
 *   backlog (the read position, at most `unreadBacklog` below the tip) from `session:ready`, or
 *   from a probe `chat:sync` with `limit: 1` that reports the tip and the read position.
 * - Live messages of a conversation being synced are held by its timeline and merged after; so are
 *   those that come between a (re)connect and its `session:ready` (the server joins the socket's
 *   rooms first), since until then nothing says where a timeline stands.
 * - A live message above the next expected seq syncs that conversation at once.
 * - `recovered: false` pages the rest over REST.
 * - A hole the server cannot fill (it reported messages up to a seq but none came) is a gap: the
 *   `gap` event and the `onGap` hook, then the timeline continues after it; nothing shown is removed.
 */
import { type BackoffOptions, fullJitter } from "./backoff.js";
import type { EventSink } from "./emitter.js";
import { ParleyError } from "./errors.js";
import type { AckData, MessageOut, SessionReady, SyncedConversation } from "./protocol.js";
import type { RestClient } from "./rest.js";
import type { Requester } from "./socket.js";
import { isRecord } from "./socket.js";
import { type DeliveredMessage, Timeline } from "./timeline.js";

/** The server's limit on conversations per `chat:sync`. */
export const SYNC_BATCH_MAX = 100;
const SYNC_RETRY_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 10_000 };
const REST_ATTEMPTS = 5;

export interface Gap {
  readonly conversationId: string;
  readonly from: number;
  readonly to: number;
  /** `missing`: the server reported these seqs but sent none; `server_behind`: it has fewer than were shown. */
  readonly reason: "missing" | "server_behind";
}

export interface RecoveryEvents {
  message: DeliveredMessage;
  gap: Gap;
  removed: { readonly conversationId: string; readonly reason: string };
  error: Error;
}

export interface RecoveryOptions {
  readonly syncLimit: number;
  /** Unread messages delivered for a conversation met for the first time (from `session:ready`). */
  readonly unreadBacklog: number;
  readonly onGap: ((gap: Gap) => void | Promise<void>) | undefined;
  readonly random: () => number;
}

interface Cursor {
  readonly conversation_id: string;
  readonly after_seq: number;
}

export class Recovery {
  private readonly timelines = new Map<string, Timeline>();
  private readonly removed = new Set<string>();
  private readonly syncing = new Set<string>();
  private readonly again = new Set<string>();
  /** Where to start a conversation not met before, learnt from `session:ready`. */
  private readonly startHints = new Map<string, number>();
  private epoch = 0;
  /** Whether this connection's `session:ready` has come (live traffic is placed only after it). */
  private ready = false;

  constructor(
    private readonly requests: Requester,
    private readonly rest: RestClient,
    private readonly isConnected: () => boolean,
    private readonly events: EventSink<RecoveryEvents>,
    private readonly options: RecoveryOptions,
  ) {}

  timeline(conversationId: string): Timeline {
    let timeline = this.timelines.get(conversationId);
    if (timeline === undefined) {
      timeline = new Timeline(conversationId);
      this.timelines.set(conversationId, timeline);
    }
    return timeline;
  }

  /** Conversations this client follows. */
  conversationIds(): string[] {
    return [...this.timelines.keys()].filter((id) => !this.removed.has(id));
  }

  /** Follow a conversation the app opened; `after` places a timeline not started yet. */
  follow(conversationId: string, after?: number): void {
    const timeline = this.timeline(conversationId);
    if (after !== undefined) this.deliver(timeline.start(after));
    this.removed.delete(conversationId);
    if (this.isConnected()) void this.sync([conversationId]);
  }

  /** A (re)connect: learn the conversations from `session:ready`, then sync them all. */
  onReady(ready: SessionReady): void {
    this.epoch++;
    this.ready = true;
    this.syncing.clear();
    this.again.clear();
    for (const room of ready.rooms) {
      if (room.startsWith("group:")) this.timeline(room.slice("group:".length));
    }
    for (const entry of unreadEntries(ready.unread)) {
      this.timeline(entry.conversation_id);
      this.startHints.set(entry.conversation_id, this.backlogStart(entry.last_read_seq, entry.last_seq));
    }
    void this.sync(this.conversationIds());
  }

  /** The connection is lost: until the next `session:ready`, live traffic is only held. */
  onConnectionLost(): void {
    this.ready = false;
  }

  /** A live `chat:message`. */
  onLive(message: MessageOut): void {
    const id = message.conversation_id;
    if (this.removed.has(id)) return;
    const timeline = this.timeline(id);
    if (!this.ready) {
      timeline.hold(message, "live");
      return;
    }
    if (!timeline.started && !this.syncing.has(id)) {
      // First seen through live traffic (a new conversation, or one just joined): start at it.
      timeline.start(message.seq - 1);
    }
    if (this.syncing.has(id)) {
      // Held until the sync's answer is merged, so nothing jumps ahead of what it brings.
      timeline.hold(message, "live");
      return;
    }
    this.deliver(timeline.accept(message, "live"));
    if (timeline.hole() !== undefined) void this.sync([id]);
  }

  /** A message known from elsewhere (a send's ack): placed like any other, delivered once. */
  accept(message: MessageOut, source: "echo" | "sync"): void {
    const timeline = this.timeline(message.conversation_id);
    if (!timeline.started && !this.syncing.has(message.conversation_id)) timeline.start(message.seq - 1);
    this.deliver(timeline.accept(message, source));
    if (timeline.hole() !== undefined) void this.sync([message.conversation_id]);
  }

  /** A conversation's tip from `conversation:updated`: where a new timeline starts. */
  onConversationTip(conversationId: string, lastSeq: number): void {
    if (this.removed.has(conversationId) || !this.ready) return;
    const timeline = this.timeline(conversationId);
    if (!timeline.started && !this.syncing.has(conversationId)) {
      this.deliver(timeline.start(startBelow(timeline, lastSeq)));
    }
  }

  /** The user left or was removed, or the conversation was deleted: stop following it. */
  onRemoved(conversationId: string, reason: string): void {
    if (this.removed.has(conversationId) || !this.timelines.has(conversationId)) return;
    this.removed.add(conversationId);
    this.events.emit("removed", { conversationId, reason });
  }

  /** Where a conversation met for the first time starts: its read position, at most the backlog below its tip. */
  private backlogStart(lastReadSeq: number, lastSeq: number): number {
    return Math.max(lastReadSeq, lastSeq - this.options.unreadBacklog, 0);
  }

  /** Sync these conversations now (one that is syncing already is synced again afterwards). */
  async sync(conversationIds: readonly string[]): Promise<void> {
    const cursors: Cursor[] = [];
    const probes: string[] = [];
    for (const id of conversationIds) {
      if (this.removed.has(id)) continue;
      if (this.syncing.has(id)) {
        this.again.add(id);
        continue;
      }
      const timeline = this.timeline(id);
      const hint = this.startHints.get(id);
      if (!timeline.started && hint !== undefined) this.deliver(timeline.start(startBelow(timeline, hint)));
      this.startHints.delete(id);
      this.syncing.add(id);
      if (timeline.started) cursors.push({ conversation_id: id, after_seq: timeline.cursor });
      else probes.push(id);
    }
    const epoch = this.epoch;
    const work: Promise<void>[] = [];
    for (let i = 0; i < cursors.length; i += SYNC_BATCH_MAX) {
      work.push(this.syncBatch(cursors.slice(i, i + SYNC_BATCH_MAX), epoch, 0));
    }
    for (let i = 0; i < probes.length; i += SYNC_BATCH_MAX) {
      work.push(this.probe(probes.slice(i, i + SYNC_BATCH_MAX), epoch, 0));
    }
    await Promise.all(work);
  }

  private async syncBatch(cursors: Cursor[], epoch: number, attempt: number): Promise<void> {
    let answer: AckData<"chat:sync">;
    try {
      answer = await this.requests.request("chat:sync", { conversations: cursors, limit: this.options.syncLimit });
    } catch (error) {
      await this.syncFailed(error, cursors, epoch, attempt, (retry, next) => this.syncBatch(retry, epoch, next));
      return;
    }
    if (epoch !== this.epoch) return;
    await Promise.all(answer.conversations.map((synced) => this.merge(synced, epoch)));
  }

  /**
   * Place conversations met for the first time: one `chat:sync` with `limit: 1` reports each one's
   * tip and read position. Starting at the read position, not the tip, keeps the messages stored
   * between `session:ready` and this answer: their live copies may come after it.
   */
  private async probe(ids: string[], epoch: number, attempt: number): Promise<void> {
    const cursors = ids.map((id) => ({ conversation_id: id, after_seq: 0 }));
    let answer: AckData<"chat:sync">;
    try {
      answer = await this.requests.request("chat:sync", { conversations: cursors, limit: 1 });
    } catch (error) {
      await this.syncFailed(error, cursors, epoch, attempt, (retry, next) =>
        this.probe(
          retry.map((cursor) => cursor.conversation_id),
          epoch,
          next,
        ),
      );
      return;
    }
    if (epoch !== this.epoch) return;
    const belowTip: string[] = [];
    for (const synced of answer.conversations) {
      if (this.refusedEntry(synced)) continue;
      const timeline = this.timeline(synced.conversation_id);
      const start = this.backlogStart(synced.last_read_seq ?? synced.last_seq, synced.last_seq);
      this.deliver(timeline.start(startBelow(timeline, start)));
      for (const message of synced.messages) this.deliver(timeline.accept(message, "sync"));
      if (timeline.cursor < synced.last_seq) {
        this.syncing.delete(synced.conversation_id);
        belowTip.push(synced.conversation_id);
      } else {
        this.finish(timeline, synced.last_seq);
      }
    }
    // Placed below their tips: what lies between comes with one batched sync, like any other.
    if (belowTip.length > 0) await this.sync(belowTip);
  }

  /**
   * A refused or lost `chat:sync`. A refusal that names no conversation (one of them forbidden,
   * gone, or ahead of the server) splits the batch until the culprit is alone; a transient failure
   * is retried while connected; a lost connection leaves it to the next `session:ready`.
   */
  private async syncFailed(
    error: unknown,
    cursors: Cursor[],
    epoch: number,
    attempt: number,
    retry: (cursors: Cursor[], attempt: number) => Promise<void>,
  ): Promise<void> {
    if (epoch !== this.epoch) return;
    const failure = error instanceof ParleyError ? error : new ParleyError("INTERNAL", String(error));
    if (failure.code === "DISCONNECTED" || !this.isConnected()) {
      for (const cursor of cursors) this.release(cursor.conversation_id);
      return;
    }
    if (["FORBIDDEN", "NOT_FOUND", "VALIDATION_ERROR"].includes(failure.code)) {
      if (cursors.length > 1) {
        const half = Math.ceil(cursors.length / 2);
        await Promise.all([retry(cursors.slice(0, half), 0), retry(cursors.slice(half), 0)]);
        return;
      }
      const [only] = cursors;
      if (only !== undefined) await this.refusedAlone(only, failure, epoch);
      return;
    }
    this.events.emit("error", failure);
    const delay = failure.retryAfter !== undefined ? failure.retryAfter * 1000 : fullJitter(attempt, SYNC_RETRY_BACKOFF, this.options.random);
    await sleep(delay);
    if (epoch !== this.epoch) return;
    if (!this.isConnected()) {
      for (const cursor of cursors) this.release(cursor.conversation_id);
      return;
    }
    await retry(cursors, attempt + 1);
  }

  private async refusedAlone(cursor: Cursor, failure: ParleyError, epoch: number): Promise<void> {
    const id = cursor.conversation_id;
    this.syncing.delete(id);
    if (failure.code !== "VALIDATION_ERROR" || cursor.after_seq === 0) {
      this.onRemoved(id, failure.code.toLowerCase());
      return;
    }
    // The cursor is beyond the server's last seq: the server lost messages this client showed.
    const timeline = this.timeline(id);
    let tip: number;
    try {
      const answer = await this.requests.request("chat:sync", { conversations: [{ conversation_id: id, after_seq: 0 }], limit: 1 });
      tip = answer.conversations[0]?.last_seq ?? 0;
    } catch {
      return;
    }
    if (epoch !== this.epoch) return;
    await this.reportGap({ conversationId: id, from: tip + 1, to: timeline.cursor, reason: "server_behind" });
    timeline.cursor = tip;
    void this.sync([id]);
  }

  /** One conversation's sync answer: its messages, then REST pages while the server has more. */
  private async merge(synced: SyncedConversation, epoch: number): Promise<void> {
    if (this.refusedEntry(synced)) return;
    const timeline = this.timeline(synced.conversation_id);
    for (const message of synced.messages) this.deliver(timeline.accept(message, "sync"));
    let serverLast = synced.last_seq;
    if (!synced.recovered || synced.has_more) {
      const paged = await this.page(timeline, epoch);
      if (paged === undefined) {
        this.release(timeline.conversationId);
        return;
      }
      serverLast = Math.max(serverLast, paged);
    }
    if (epoch !== this.epoch) return;
    this.finish(timeline, serverLast);
  }

  /** Page `GET …/messages?after_seq=` until the server has no more; the last seq seen, or undefined if it failed. */
  private async page(timeline: Timeline, epoch: number): Promise<number | undefined> {
    let last = timeline.cursor;
    for (let attempt = 0; attempt < REST_ATTEMPTS; ) {
      try {
        const page = await this.rest.messagesAfter(timeline.conversationId, timeline.cursor);
        if (epoch !== this.epoch) return undefined;
        for (const message of page.items) {
          last = Math.max(last, message.seq);
          this.deliver(timeline.accept(message, "sync"));
        }
        if (!page.has_more) return last;
        if (page.items.length === 0) return last;
        attempt = 0;
      } catch (error) {
        const failure = error instanceof ParleyError ? error : new ParleyError("UNAVAILABLE", String(error));
        if (failure.code === "FORBIDDEN" || failure.code === "NOT_FOUND") {
          this.onRemoved(timeline.conversationId, failure.code.toLowerCase());
          return undefined;
        }
        this.events.emit("error", failure);
        attempt++;
        await sleep(failure.retryAfter !== undefined ? failure.retryAfter * 1000 : fullJitter(attempt, SYNC_RETRY_BACKOFF, this.options.random));
        if (epoch !== this.epoch) return undefined;
      }
    }
    return undefined;
  }

  /** An entry the server would not sync (the conversation is gone, or no longer the user's): dropped. */
  private refusedEntry(synced: SyncedConversation): boolean {
    if (synced.error === undefined || synced.error === null) return false;
    this.syncing.delete(synced.conversation_id);
    this.onRemoved(synced.conversation_id, synced.error.code.toLowerCase());
    return true;
  }

  /** A sync of one conversation is complete: fill or declare what is still missing. */
  private finish(timeline: Timeline, serverLast: number): void {
    const id = timeline.conversationId;
    this.syncing.delete(id);
    this.deliver(timeline.flush());
    const hole = timeline.hole();
    if (hole !== undefined && hole.from <= serverLast) {
      void this.reportGap({ conversationId: id, from: hole.from, to: Math.min(hole.to, serverLast), reason: "missing" }).then(() =>
        this.deliver(timeline.skipHole()),
      );
      return;
    }
    if (hole !== undefined || this.again.delete(id)) void this.sync([id]);
  }

  /** A sync given up (connection lost, REST failing): deliver what is in line; the next sync does the rest. */
  private release(conversationId: string): void {
    this.syncing.delete(conversationId);
    this.deliver(this.timeline(conversationId).flush());
  }

  private async reportGap(gap: Gap): Promise<void> {
    this.events.emit("gap", gap);
    try {
      await this.options.onGap?.(gap);
    } catch (error) {
      this.events.emit("error", error instanceof Error ? error : new Error(String(error)));
    }
  }

  private deliver(delivered: DeliveredMessage[]): void {
    for (const message of delivered) this.events.emit("message", message);
  }
}

/** Start a timeline at `seq`, but never above a live message it already holds. */
function startBelow(timeline: Timeline, seq: number): number {
  const lowest = timeline.lowestHeld;
  return lowest === undefined ? seq : Math.min(seq, lowest - 1);
}

interface UnreadEntry {
  readonly conversation_id: string;
  readonly last_seq: number;
  readonly last_read_seq: number;
  readonly unread: number;
}

/** The per-conversation entries of `session:ready.unread` (`{conversations: [...], total}`). */
export function unreadEntries(unread: unknown): UnreadEntry[] {
  if (!isRecord(unread) || !Array.isArray(unread["conversations"])) return [];
  return unread["conversations"].filter(
    (entry): entry is UnreadEntry =>
      isRecord(entry) &&
      typeof entry["conversation_id"] === "string" &&
      typeof entry["last_seq"] === "number" &&
      typeof entry["last_read_seq"] === "number" &&
      typeof entry["unread"] === "number",
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
