/**
 * One conversation's messages as the app sees them: ordered by seq, each once, none skipped.
 *
 * The timeline starts after a seq (its floor) and delivers seq floor+1, floor+2, … in order. A
 * message that arrives above the next expected seq is held until the hole below it is filled (by
 * a sync) or declared a gap; one at or below the cursor is a duplicate and is dropped.
 */
import type { MessageOut } from "./protocol.js";

/** Where a message came from: a live `chat:message`, a `chat:sync` or REST page, or a send's ack. */
export type MessageSource = "live" | "sync" | "echo";

export type DeliveredMessage = MessageOut & { readonly source: MessageSource };

export interface SeqRange {
  readonly from: number;
  readonly to: number;
}

export class Timeline {
  /** The seq the timeline started after; undefined until a starting point is known. */
  floor: number | undefined;
  /** The highest seq delivered with nothing missing below it (down to the floor). */
  cursor = 0;
  readonly messages: DeliveredMessage[] = [];
  private readonly held = new Map<number, DeliveredMessage>();
  private readonly ids = new Set<string>();

  constructor(readonly conversationId: string) {}

  get started(): boolean {
    return this.floor !== undefined;
  }

  /** The lowest seq waiting above a hole, if any. */
  get lowestHeld(): number | undefined {
    let lowest: number | undefined;
    for (const seq of this.held.keys()) if (lowest === undefined || seq < lowest) lowest = seq;
    return lowest;
  }

  /** Start after `seq` (no effect once started); returns what can now be delivered. */
  start(seq: number): DeliveredMessage[] {
    if (this.floor !== undefined) return [];
    this.floor = seq;
    this.cursor = seq;
    for (const held of [...this.held.keys()]) if (held <= seq) this.held.delete(held);
    return this.drain();
  }

  /** Take a message; returns the messages delivered because of it, in seq order (often none or one). */
  accept(message: MessageOut, source: MessageSource): DeliveredMessage[] {
    return this.hold(message, source) && this.floor !== undefined ? this.drain() : [];
  }

  /** Keep a message without delivering anything yet (a sync is on its way); false if it is a duplicate. */
  hold(message: MessageOut, source: MessageSource): boolean {
    if (message.conversation_id !== this.conversationId) return false;
    if (this.ids.has(message.id) || this.held.has(message.seq)) return false;
    if (this.floor !== undefined && message.seq <= this.cursor) return false;
    this.held.set(message.seq, { ...message, source });
    return true;
  }

  /** Deliver whatever is next in line. */
  flush(): DeliveredMessage[] {
    return this.floor === undefined ? [] : this.drain();
  }

  /** The hole between the cursor and the lowest held message, if there is one. */
  hole(): SeqRange | undefined {
    const lowest = this.lowestHeld;
    if (this.floor === undefined || lowest === undefined) return undefined;
    return { from: this.cursor + 1, to: lowest - 1 };
  }

  /** Give up on the hole below the lowest held message: continue after it. */
  skipHole(): DeliveredMessage[] {
    const lowest = this.lowestHeld;
    if (this.floor === undefined || lowest === undefined) return [];
    this.cursor = lowest - 1;
    return this.drain();
  }

  /** Jump forward to `seq` (the server has nothing below it for us); returns what follows. */
  advanceTo(seq: number): DeliveredMessage[] {
    if (this.floor === undefined) return this.start(seq);
    if (seq > this.cursor) {
      this.cursor = seq;
      for (const held of [...this.held.keys()]) if (held <= seq) this.held.delete(held);
    }
    return this.drain();
  }

  private drain(): DeliveredMessage[] {
    const delivered: DeliveredMessage[] = [];
    for (let next = this.held.get(this.cursor + 1); next !== undefined; next = this.held.get(this.cursor + 1)) {
      this.held.delete(next.seq);
      this.cursor = next.seq;
      this.ids.add(next.id);
      this.messages.push(next);
      delivered.push(next);
    }
    return delivered;
  }
}
