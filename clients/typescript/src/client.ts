/**
 * `ParleyClient`: the connection, recovery, outbox, read state, presence and typing of one user,
 * composed, and shared between the user's tabs.
 */
import type { BackoffOptions } from "./backoff.js";
import { CONNECTION_DEFAULTS, Connection, type ConnectionState, type GetToken, type StateChange } from "./connection.js";
import { Conversation, type ConversationHost } from "./conversation.js";
import { Emitter, type Unsubscribe } from "./emitter.js";
import { type Environment, browserEnvironment, tokenSubject } from "./environment.js";
import { ParleyError, asError } from "./errors.js";
import { hasIndexedDb, indexedDbOutboxStore } from "./indexeddb-store.js";
import { type OutboxStoreFactory, memoryOutboxStore } from "./outbox-store.js";
import { Outbox, type OutboxHandle, type OutboxUpdate } from "./outbox.js";
import { Presence } from "./presence.js";
import type { AckData, ClientEvent, PayloadOf, ServerEvent, ServerPayload, SessionReady, UserStatus, UserView } from "./protocol.js";
import { Reads, type UnreadChange } from "./reads.js";
import { type Gap, Recovery } from "./recovery.js";
import { type FetchLike, RestClient } from "./rest.js";
import { type AnyListener, type SocketFactory, type SocketIoOptions, socketIoFactory } from "./socket.js";
import { TabChannel, type TabMessage, canShareTabs, relaySocketFactory } from "./tabs.js";
import type { DeliveredMessage } from "./timeline.js";
import { Typing, type TypingChange } from "./typing.js";

export interface ParleyClientOptions {
  /** Called before every connect and refresh; null when no token can be had (the client closes). */
  readonly getToken: GetToken;
  /** The user's id; read from the first token's `sub` when left out. Names the storage and the tab lock. */
  readonly userId?: string;
  /** Base URL of the REST API (default: the socket URL). */
  readonly restUrl?: string;
  readonly fetch?: FetchLike;
  /** Options for socket.io-client's `io()` (transports, path, …); reconnection stays the client's. */
  readonly socket?: SocketIoOptions;
  /** Replaces socket.io-client (tests drive the client through a scripted socket). */
  readonly socketFactory?: SocketFactory;
  /** Default: IndexedDB in browsers, memory elsewhere. */
  readonly outboxStore?: OutboxStoreFactory;
  /** Unsent entries older than this fail with `EXPIRED` (default 24 h). */
  readonly outboxMaxAgeMs?: number;
  /** `shared` (default where Web Locks and BroadcastChannel exist): one connection for all tabs. */
  readonly tabs?: "shared" | "independent";
  readonly backoff?: BackoffOptions;
  readonly suspendAfterMs?: number;
  readonly refreshSkewMs?: number;
  readonly ackTimeoutMs?: number;
  /** Messages per conversation per `chat:sync` (default 100, at most 200). */
  readonly syncLimit?: number;
  /** Unread messages fetched for a conversation met for the first time (default 100). */
  readonly unreadBacklog?: number;
  /** Called when continuity cannot be restored; the client continues after the gap once it returns. */
  readonly onGap?: (gap: Gap) => void | Promise<void>;
  readonly environment?: Environment;
  readonly random?: () => number;
}

export type Role = "single" | "leader" | "follower";

export interface ClientEvents {
  state: StateChange;
  ready: SessionReady;
  message: DeliveredMessage;
  gap: Gap;
  removed: { readonly conversationId: string; readonly reason: string };
  outbox: OutboxUpdate;
  unread: UnreadChange;
  presence: UserStatus;
  typing: TypingChange;
  role: Role;
  error: Error;
}

/** An exception thrown by one of the app's listeners, reported as the `error` event. */
export class ListenerError extends Error {
  override readonly name = "ListenerError";
  constructor(
    readonly event: string,
    override readonly cause: unknown,
  ) {
    super(`A listener of "${event}" threw: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

const DAY_MS = 86_400_000;

export class ParleyClient {
  private readonly emitter = new Emitter<ClientEvents>((error, event) => this.listenerFailed(error, event));
  private readonly connection: Connection;
  private readonly recovery: Recovery;
  private readonly outbox: Outbox;
  private readonly reads: Reads;
  private readonly presenceState: Presence;
  private readonly typing: Typing;
  private readonly focused = new Set<string>();
  private readonly views = new Map<string, Conversation>();
  private readonly host: ConversationHost;
  private channel: TabChannel | undefined;
  private lastReady: SessionReady | undefined;
  private currentRole: Role = "single";
  private userIdValue: string | undefined;
  private started = false;

  constructor(
    readonly url: string,
    private readonly options: ParleyClientOptions,
  ) {
    const failed = (error: unknown, event: string): void => this.listenerFailed(error, event);
    const random = options.random ?? Math.random;
    this.connection = new Connection(
      {
        url,
        getToken: options.getToken,
        socketFactory: options.socketFactory ?? socketIoFactory(options.socket),
        environment: options.environment ?? browserEnvironment(),
        backoff: options.backoff ?? CONNECTION_DEFAULTS.backoff,
        suspendAfterMs: options.suspendAfterMs ?? CONNECTION_DEFAULTS.suspendAfterMs,
        refreshSkewMs: options.refreshSkewMs ?? CONNECTION_DEFAULTS.refreshSkewMs,
        ackTimeoutMs: options.ackTimeoutMs ?? CONNECTION_DEFAULTS.ackTimeoutMs,
        random,
        authenticates: true,
      },
      failed,
    );
    const requests = this.connection.requests;
    const connected = (): boolean => this.connection.connected;
    const rest = new RestClient(options.restUrl ?? url, options.fetch ?? ((input, init) => fetch(input, init)), () => this.restToken());
    this.recovery = new Recovery(requests, rest, connected, this.emitter, {
      syncLimit: Math.min(options.syncLimit ?? 100, 200),
      unreadBacklog: options.unreadBacklog ?? 100,
      onGap: options.onGap,
      random,
    });
    this.outbox = new Outbox({
      requests,
      canSend: () => connected() && this.currentRole !== "follower",
      userId: () => this.userIdValue,
      onStored: (message) => this.recovery.accept(message, "echo"),
      events: this.emitter,
      onListenerError: failed,
      maxAgeMs: options.outboxMaxAgeMs ?? DAY_MS,
      ackTimeoutMs: options.ackTimeoutMs ?? CONNECTION_DEFAULTS.ackTimeoutMs,
      random,
      newId: () => crypto.randomUUID(),
    });
    this.reads = new Reads(requests, connected, this.emitter);
    this.presenceState = new Presence(requests, connected, this.emitter);
    this.typing = new Typing((event, payload) => this.connection.fire(event, payload), this.emitter);
    this.host = this.conversationHost();
    this.wire();
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  /** `single` (own connection, tabs not shared), `leader` (holds the connection for all tabs) or `follower`. */
  get role(): Role {
    return this.currentRole;
  }

  /** The signed-in user, from the latest `session:ready`. */
  get user(): UserView | undefined {
    return this.lastReady?.user;
  }

  get presence(): Pick<Presence, "subscribe" | "unsubscribe" | "status"> {
    return this.presenceState;
  }

  /** Unread messages over all conversations. */
  get totalUnread(): number {
    return this.reads.total;
  }

  /** Open storage, take (or wait for) the connection of this user's tabs, and connect. */
  async connect(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const userId = this.options.userId ?? (await this.userFromToken());
    if (userId === undefined) {
      this.connection.close("token_unavailable");
      return;
    }
    this.userIdValue = userId;
    const sharing = (this.options.tabs ?? "shared") === "shared" && canShareTabs();
    let namespace = userId;
    if (sharing) {
      const channel = new TabChannel(userId);
      this.channel = channel;
      channel.onMessage((message) => this.onTabMessage(message));
      const leading = await channel.claim(() => this.promote());
      this.setRole(leading ? "leader" : "follower");
      if (!leading) {
        this.connection.replaceSocket(relaySocketFactory(channel), false);
        this.outbox.setRelay({
          add: (record) => channel.post({ type: "outbox-add", from: channel.tabId, record }),
          command: (clientMsgId, command) => channel.post({ type: "outbox-command", from: channel.tabId, clientMsgId, command }),
        });
      }
    } else {
      namespace = independentNamespace(userId);
    }
    const stores = this.options.outboxStore ?? (hasIndexedDb() ? indexedDbOutboxStore() : memoryOutboxStore());
    await this.outbox.open(stores(namespace)).catch((error: unknown) => this.emitter.emit("error", asError(error)));
    this.connection.connect();
  }

  /** Disconnect for good (the outbox keeps its entries for the next session). */
  close(reason = "client_closed"): void {
    this.connection.close(reason);
    this.channel?.close();
    this.channel = undefined;
  }

  on<E extends keyof ClientEvents & string>(event: E, listener: (payload: ClientEvents[E]) => void): Unsubscribe {
    return this.emitter.on(event, listener);
  }

  once<E extends keyof ClientEvents & string>(event: E, listener: (payload: ClientEvents[E]) => void): Unsubscribe {
    return this.emitter.once(event, listener);
  }

  /** Any server event, typed from the protocol (announcements, notifications, …). */
  onServer<E extends ServerEvent>(event: E, listener: (payload: ServerPayload<E>) => void): void {
    this.connection.onServer(event, ((payload: ServerPayload<E>) => {
      try {
        listener(payload);
      } catch (error) {
        this.listenerFailed(error, event);
      }
    }) as AnyListener);
  }

  /** Any client event with its typed ack (`room:join`, `conversation:leave`, …); fails when not connected. */
  request<E extends ClientEvent>(event: E, payload: PayloadOf<E>): Promise<AckData<E>> {
    return this.connection.requests.request(event, payload);
  }

  /** A conversation's view; following it from `after` if it is new to this client. */
  conversation(conversationId: string, options: { after?: number } = {}): Conversation {
    let view = this.views.get(conversationId);
    if (view === undefined) {
      view = new Conversation(conversationId, this.host);
      this.views.set(conversationId, view);
      const known = this.recovery.conversationIds().includes(conversationId);
      if (!known || options.after !== undefined) this.recovery.follow(conversationId, options.after);
    }
    return view;
  }

  /** The ids of the conversations followed (from `session:ready`, live traffic and the app). */
  conversationIds(): string[] {
    return this.recovery.conversationIds();
  }

  /** Every unsent entry, of every conversation, oldest first. */
  pending(): OutboxHandle[] {
    return this.outbox.pending();
  }

  private wire(): void {
    const connection = this.connection;
    connection.events.on("state", (change) => this.onState(change));
    connection.events.on("error", (error) => this.emitter.emit("error", error));
    connection.events.on("ready", (ready) => this.onReady(ready));
    const on = <E extends ServerEvent>(event: E, handle: (payload: ServerPayload<E>) => void): void =>
      connection.onServer(event, handle as AnyListener);
    on("chat:message", ({ message }) => this.recovery.onLive(message));
    on("unread:update", (update) => this.reads.onUpdate(update));
    on("user:status", (status) => this.presenceState.onLive(status));
    on("chat:typing", (event) => this.typing.onLive(event));
    on("conversation:updated", ({ conversation }) => this.recovery.onConversationTip(conversation.id, conversation.last_seq));
    on("conversation:deleted", ({ conversation_id }) => this.recovery.onRemoved(conversation_id, "deleted"));
    on("conversation:participant_removed", (change) => {
      if (change.user_id === this.userIdValue) this.recovery.onRemoved(change.conversation_id, change.by === change.user_id ? "left" : "removed");
    });
    on("conversation:participant_added", (change) => {
      if (change.user_id === this.userIdValue) this.recovery.follow(change.conversation_id);
    });
    connection.onAnyServer((event, ...args) => {
      if (this.currentRole === "leader") this.channel?.post({ type: "event", from: this.channel.tabId, event, args });
    });
    this.emitter.on("message", (message) => this.outbox.resolve(message));
    this.emitter.on("outbox", (update) => {
      if (this.currentRole === "leader") this.channel?.post({ type: "outbox-update", from: this.channel.tabId, update });
    });
  }

  private onState(change: StateChange): void {
    if (change.current !== "connected") {
      this.typing.reset();
      this.recovery.onConnectionLost();
    }
    if (this.currentRole === "leader") this.channel?.post({ type: "leader", from: this.channel.tabId, state: change.current, ready: null });
    if (change.current === "closed") this.channel?.close();
    this.emitter.emit("state", change);
  }

  private onReady(ready: SessionReady): void {
    this.lastReady = ready;
    this.userIdValue = ready.user.id;
    this.typing.ttlSeconds = ready.limits.typing_ttl;
    this.recovery.onReady(ready);
    this.reads.onReady(ready);
    this.presenceState.onReady();
    for (const id of this.focused) void this.connection.requests.request("conversation:focus", { conversation_id: id }).catch(() => undefined);
    this.outbox.kickAll();
    this.emitter.emit("ready", ready);
  }

  private onTabMessage(message: TabMessage): void {
    const channel = this.channel;
    if (channel === undefined) return;
    if (this.currentRole === "leader") {
      if (message.type === "hello") {
        const state = this.connection.state;
        channel.post({ type: "leader", from: channel.tabId, state, ready: state === "connected" ? (this.lastReady ?? null) : null });
      } else if (message.type === "request") {
        this.relayRequest(channel, message);
      } else if (message.type === "outbox-add") {
        this.outbox.adopt(message.record);
      } else if (message.type === "outbox-command") {
        this.outbox.command(message.clientMsgId, message.command);
      }
    } else if (this.currentRole === "follower" && message.type === "outbox-update") {
      this.outbox.applyUpdate(message.update);
      if (message.update.message !== undefined) this.recovery.accept(message.update.message, "echo");
    }
  }

  private relayRequest(channel: TabChannel, message: Extract<TabMessage, { type: "request" }>): void {
    if (!message.acked) {
      this.connection.fire(message.event, message.payload);
      return;
    }
    const answer = (response: unknown): void => channel.post({ type: "response", from: channel.tabId, to: message.from, id: message.id, response });
    this.connection.requests.raw(message.event, message.payload).then(answer, (error: unknown) => {
      const failure = error instanceof ParleyError ? error : new ParleyError("DISCONNECTED", String(error));
      answer({ ok: false, error: { code: failure.code, message: failure.message } });
    });
  }

  /** The tab holding the connection went away and this one got the lock: connect and send from here. */
  private promote(): void {
    this.setRole("leader");
    this.outbox.setRelay(undefined);
    this.connection.replaceSocket(this.options.socketFactory ?? socketIoFactory(this.options.socket), true);
    const userId = this.userIdValue;
    const stores = this.options.outboxStore ?? (hasIndexedDb() ? indexedDbOutboxStore() : memoryOutboxStore());
    if (userId !== undefined) void this.outbox.open(stores(userId)).catch((error: unknown) => this.emitter.emit("error", asError(error)));
  }

  private setRole(role: Role): void {
    if (this.currentRole === role) return;
    this.currentRole = role;
    this.emitter.emit("role", role);
  }

  private async userFromToken(): Promise<string | undefined> {
    try {
      const token = await this.options.getToken({ reason: "connect" });
      return token === null ? undefined : tokenSubject(token);
    } catch (error) {
      this.emitter.emit("error", asError(error));
      return undefined;
    }
  }

  private async restToken(): Promise<string> {
    const token = await this.options.getToken({ reason: "refresh" });
    if (token === null) throw new ParleyError("UNAUTHORIZED", "No token for the REST API");
    return token;
  }

  private listenerFailed(error: unknown, event: string): void {
    if (event === "error") return;
    this.emitter.emit("error", new ListenerError(event, error));
  }

  private conversationHost(): ConversationHost {
    return {
      timeline: (id) => this.recovery.timeline(id),
      send: (id, body) => this.outbox.send(id, body),
      pending: (id) => this.outbox.pending(id),
      markRead: (id, seq) => this.reads.markRead(id, seq),
      unreadOf: (id) => this.reads.unreadOf(id),
      focus: (id) => {
        this.focused.add(id);
        return this.connection.requests.request("conversation:focus", { conversation_id: id });
      },
      blur: (id) => {
        this.focused.delete(id);
        return this.connection.requests.request("conversation:blur", { conversation_id: id });
      },
      keystroke: (id) => this.typing.keystroke(id),
      stopTyping: (id) => this.typing.stop(id),
      typists: (id) => this.typing.typists(id),
      onMessage: (id, listener) =>
        this.emitter.on("message", (message) => {
          if (message.conversation_id === id) listener(message);
        }),
    };
  }
}

/** Independent tabs keep their own outbox; a tab keeps its id across reloads (sessionStorage). */
function independentNamespace(userId: string): string {
  const storage = (globalThis as { sessionStorage?: Storage }).sessionStorage;
  if (storage === undefined) return userId;
  const key = "parley:tab-id";
  let tabId = storage.getItem(key);
  if (tabId === null) {
    tabId = crypto.randomUUID();
    storage.setItem(key, tabId);
  }
  return `${userId}:${tabId}`;
}
