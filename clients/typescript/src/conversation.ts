/** The app's view of one conversation: its messages, its unsent entries, read state and typing. */
import type { Unsubscribe } from "./emitter.js";
import type { OutboxHandle } from "./outbox.js";
import type { ConversationRefOut } from "./protocol.js";
import type { DeliveredMessage, Timeline } from "./timeline.js";

/** What a conversation needs of its client. */
export interface ConversationHost {
  timeline(conversationId: string): Timeline;
  send(conversationId: string, body: string): OutboxHandle;
  pending(conversationId: string): OutboxHandle[];
  markRead(conversationId: string, seq: number): Promise<void>;
  unreadOf(conversationId: string): number;
  focus(conversationId: string): Promise<ConversationRefOut>;
  blur(conversationId: string): Promise<ConversationRefOut>;
  keystroke(conversationId: string): void;
  stopTyping(conversationId: string): void;
  typists(conversationId: string): string[];
  onMessage(conversationId: string, listener: (message: DeliveredMessage) => void): Unsubscribe;
}

export class Conversation {
  constructor(
    readonly id: string,
    private readonly host: ConversationHost,
  ) {}

  /** Messages in seq order, each once, with where each came from. */
  get messages(): readonly DeliveredMessage[] {
    return this.host.timeline(this.id).messages;
  }

  /** The highest seq held with nothing missing below it. */
  get cursor(): number {
    return this.host.timeline(this.id).cursor;
  }

  /** Entries sent from here (or another tab) that the server has not stored yet, oldest first. */
  get pending(): OutboxHandle[] {
    return this.host.pending(this.id);
  }

  get unread(): number {
    return this.host.unreadOf(this.id);
  }

  /** Who is typing here now (their user ids). */
  get typists(): string[] {
    return this.host.typists(this.id);
  }

  /** Queue a message; the handle follows it to the server and back. */
  send(body: string): OutboxHandle {
    return this.host.send(this.id, body);
  }

  /** Mark read up to `seq` (default: everything held); resolves once the server has it. */
  markRead(seq: number = this.cursor): Promise<void> {
    return this.host.markRead(this.id, seq);
  }

  /** Start seeing read cursors and typing here; kept across reconnects until `blur()`. */
  focus(): Promise<ConversationRefOut> {
    return this.host.focus(this.id);
  }

  blur(): Promise<ConversationRefOut> {
    return this.host.blur(this.id);
  }

  /** Call on every keystroke: `typing: true` goes out at the server's throttle, and stops by itself. */
  keystroke(): void {
    this.host.keystroke(this.id);
  }

  stopTyping(): void {
    this.host.stopTyping(this.id);
  }

  onMessage(listener: (message: DeliveredMessage) => void): Unsubscribe {
    return this.host.onMessage(this.id, listener);
  }
}
