/**
 * Typing: `keystroke()` sends `typing: true` at most once per the server's throttle window
 * (TYPING_TTL / 2, at most 3 s) and stops by itself after TYPING_TTL without a keystroke;
 * `stop()` ends it at once. Others' indicators expire after the `expires_in` they came with.
 */
import type { EventSink } from "./emitter.js";
import type { TypingOut } from "./protocol.js";

export interface TypingChange {
  readonly conversationId: string;
  /** Who is typing there now. */
  readonly userIds: readonly string[];
}

interface Own {
  lastSent: number;
  idle: ReturnType<typeof setTimeout>;
}

export class Typing {
  /** TYPING_TTL in seconds, from `session:ready.limits`. */
  ttlSeconds = 6;
  private readonly own = new Map<string, Own>();
  private readonly others = new Map<string, Map<string, ReturnType<typeof setTimeout>>>();

  constructor(
    private readonly fire: (event: "chat:typing", payload: { conversation_id: string; typing: boolean }) => boolean,
    private readonly events: EventSink<{ typing: TypingChange }>,
  ) {}

  private get throttleMs(): number {
    return Math.min((this.ttlSeconds * 1000) / 2, 3000);
  }

  keystroke(conversationId: string): void {
    const now = Date.now();
    const own = this.own.get(conversationId);
    if (own !== undefined) clearTimeout(own.idle);
    const idle = setTimeout(() => this.stop(conversationId), this.ttlSeconds * 1000);
    if (own !== undefined && now - own.lastSent < this.throttleMs) {
      own.idle = idle;
      return;
    }
    const sent = this.fire("chat:typing", { conversation_id: conversationId, typing: true });
    this.own.set(conversationId, { lastSent: sent ? now : -Infinity, idle });
  }

  stop(conversationId: string): void {
    const own = this.own.get(conversationId);
    if (own === undefined) return;
    clearTimeout(own.idle);
    this.own.delete(conversationId);
    this.fire("chat:typing", { conversation_id: conversationId, typing: false });
  }

  typists(conversationId: string): string[] {
    return [...(this.others.get(conversationId)?.keys() ?? [])];
  }

  onLive(event: TypingOut): void {
    let typists = this.others.get(event.conversation_id);
    const known = typists?.get(event.user_id);
    if (known !== undefined) clearTimeout(known);
    if (event.typing) {
      if (typists === undefined) {
        typists = new Map();
        this.others.set(event.conversation_id, typists);
      }
      typists.set(event.user_id, setTimeout(() => this.expire(event.conversation_id, event.user_id), event.expires_in * 1000));
    } else {
      typists?.delete(event.user_id);
    }
    if (event.typing || known !== undefined) this.changed(event.conversation_id);
  }

  /** The connection dropped: the server ended our indicators, and others' may be stale. */
  reset(): void {
    for (const own of this.own.values()) clearTimeout(own.idle);
    this.own.clear();
    for (const [conversationId, typists] of this.others) {
      for (const timer of typists.values()) clearTimeout(timer);
      this.others.delete(conversationId);
      this.changed(conversationId);
    }
  }

  private expire(conversationId: string, userId: string): void {
    if (this.others.get(conversationId)?.delete(userId)) this.changed(conversationId);
  }

  private changed(conversationId: string): void {
    this.events.emit("typing", { conversationId, userIds: this.typists(conversationId) });
  }
}
