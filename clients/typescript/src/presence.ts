/**
 * Presence: `subscribe(userIds)` answers a snapshot, then `user:status` keeps it current. Updates
 * that arrive while a snapshot is on its way are held and applied after it, so an old snapshot
 * never overwrites a newer status. Subscriptions are renewed on every reconnect.
 */
import type { EventSink } from "./emitter.js";
import type { UserStatus } from "./protocol.js";
import type { Requester } from "./socket.js";

export class Presence {
  private readonly statuses = new Map<string, UserStatus>();
  private readonly subscribed = new Set<string>();
  /** Users with a snapshot on its way → the updates held meanwhile. */
  private readonly held = new Map<string, UserStatus[]>();

  constructor(
    private readonly requests: Requester,
    private readonly isConnected: () => boolean,
    private readonly events: EventSink<{ presence: UserStatus; error: Error }>,
  ) {}

  /** Follow these users; resolves with their statuses (those you may see) once the server answered. */
  async subscribe(userIds: readonly string[]): Promise<UserStatus[]> {
    for (const id of userIds) this.subscribed.add(id);
    if (!this.isConnected()) return userIds.flatMap((id) => this.statuses.get(id) ?? []);
    return this.snapshot([...userIds]);
  }

  async unsubscribe(userIds: readonly string[]): Promise<void> {
    for (const id of userIds) {
      this.subscribed.delete(id);
      this.statuses.delete(id);
    }
    if (this.isConnected()) await this.requests.request("presence:unsubscribe", { user_ids: [...userIds] });
  }

  status(userId: string): UserStatus | undefined {
    return this.statuses.get(userId);
  }

  onLive(status: UserStatus): void {
    const held = this.held.get(status.user_id);
    if (held !== undefined) held.push(status);
    else if (this.subscribed.has(status.user_id)) this.apply(status);
  }

  /** A (re)connect: the presence rooms are gone with the old socket, so subscribe again. */
  onReady(): void {
    if (this.subscribed.size === 0) return;
    this.snapshot([...this.subscribed]).catch((error: unknown) => {
      this.events.emit("error", error instanceof Error ? error : new Error(String(error)));
    });
  }

  private async snapshot(userIds: string[]): Promise<UserStatus[]> {
    for (const id of userIds) if (!this.held.has(id)) this.held.set(id, []);
    try {
      const answer = await this.requests.request("presence:subscribe", { user_ids: userIds });
      for (const status of answer.statuses) this.apply(status);
      return answer.statuses;
    } finally {
      for (const id of userIds) {
        const updates = this.held.get(id) ?? [];
        this.held.delete(id);
        for (const update of updates) this.apply(update);
      }
    }
  }

  private apply(status: UserStatus): void {
    const known = this.statuses.get(status.user_id);
    if (known !== undefined && known.status === status.status && known.last_seen_at === status.last_seen_at) return;
    this.statuses.set(status.user_id, status);
    this.events.emit("presence", status);
  }
}
