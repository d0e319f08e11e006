/**
 * The connection's life: states with full-jitter backoff, a fresh token before every connect,
 * `auth:refresh` before the token expires, and `force_logout` handled by its reason.
 *
 *   idle → connecting → connected ⇄ reconnecting → suspended, and closed (terminal)
 *
 * Every transition is reported as `{previous, current, reason}`.
 */
import { type BackoffOptions, DEFAULT_BACKOFF, fullJitter } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { type Environment, type WakeReason, tokenExpiry } from "./environment.js";
import { ParleyError, asError } from "./errors.js";
import type { ForceLogout, SessionReady } from "./protocol.js";
import { type AnyListener, Requester, type SocketFactory, type SocketLike, isRecord } from "./socket.js";

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "suspended" | "closed";

export interface StateChange {
  readonly previous: ConnectionState;
  readonly current: ConnectionState;
  readonly reason: string;
}

export interface TokenRequest {
  /** `connect`: first connect; `reconnect`: after a drop; `refresh`: before expiry; `expired`: after `force_logout` token_expired or a refused expired token. */
  readonly reason: "connect" | "reconnect" | "refresh" | "expired";
}

/** A valid access token, or null when none can be had any more (the client then closes). */
export type GetToken = (request: TokenRequest) => Promise<string | null> | string | null;

export interface ConnectionOptions {
  readonly url: string;
  readonly getToken: GetToken;
  readonly socketFactory: SocketFactory;
  readonly environment: Environment;
  readonly backoff: BackoffOptions;
  /** Time without a connection after which the state becomes `suspended` (default 120 s). */
  readonly suspendAfterMs: number;
  /** Refresh this long before the token expires (default 60 s; at most half the time left). */
  readonly refreshSkewMs: number;
  readonly ackTimeoutMs: number;
  readonly random: () => number;
  /** False for a tab that relays through another tab's socket: no token, no refresh. */
  readonly authenticates: boolean;
}

export const CONNECTION_DEFAULTS = {
  backoff: DEFAULT_BACKOFF,
  suspendAfterMs: 120_000,
  refreshSkewMs: 60_000,
  ackTimeoutMs: 10_000,
} as const;

/** connect_error codes after which no token will do: the client closes. */
const FATAL_CONNECT_CODES = new Set(["UNAUTHORIZED", "SESSION_REVOKED"]);
/** Shortest wait before asking for a token again when a refresh could not be done. */
const REFRESH_RETRY_MS = 1_000;

interface ConnectionEvents {
  state: StateChange;
  ready: SessionReady;
  error: Error;
}

export class Connection {
  state: ConnectionState = "idle";
  readonly events: Emitter<ConnectionEvents>;
  readonly requests: Requester;
  /** Server clock minus local clock, ms, from `session:ready.server_time`. */
  serverOffsetMs = 0;

  private socket: SocketLike | undefined;
  private factory: SocketFactory;
  private authenticates: boolean;
  private token: string | undefined;
  private attempt = 0;
  private generation = 0;
  private attempting = false;
  private forcedOut: ForceLogout["reason"] | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private suspendTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly serverListeners = new Map<string, Set<AnyListener>>();
  private readonly anyListeners = new Set<(event: string, ...args: unknown[]) => void>();
  private stopWaking: (() => void) | undefined;

  constructor(
    private readonly options: ConnectionOptions,
    onListenerError: (error: unknown, event: string) => void,
  ) {
    this.events = new Emitter(onListenerError);
    this.factory = options.socketFactory;
    this.authenticates = options.authenticates;
    this.requests = new Requester(() => this.socket, options.ackTimeoutMs);
  }

  get connected(): boolean {
    return this.state === "connected";
  }

  /** Start connecting (from `idle` only). */
  connect(): void {
    if (this.state !== "idle") return;
    this.stopWaking = this.options.environment.onWake((reason) => this.wake(reason));
    this.transition("connecting", "connect");
    void this.attemptConnect("connect");
  }

  /** Close for good with `reason`; nothing reconnects afterwards. */
  close(reason: string): void {
    if (this.state === "closed") return;
    this.generation++;
    this.clearTimers();
    this.stopWaking?.();
    this.transition("closed", reason);
    this.requests.failAll(reason);
    this.socket?.disconnect();
  }

  /** Listen to a server event on this and every later socket. */
  onServer(event: string, listener: AnyListener): void {
    let set = this.serverListeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.serverListeners.set(event, set);
    }
    set.add(listener);
    this.socket?.on(event, listener);
  }

  /** Listen to every server event (a leader tab relays them to the others). */
  onAnyServer(listener: (event: string, ...args: unknown[]) => void): void {
    this.anyListeners.add(listener);
    this.socket?.onAny(listener);
  }

  /** Emit without an ack, only while connected (typing stops and the like). */
  fire(event: string, payload: unknown): boolean {
    if (!this.connected || this.socket === undefined) return false;
    this.socket.emit(event, payload);
    return true;
  }

  /**
   * Continue on another kind of socket (a follower tab promoted to hold the connection): the old
   * one is dropped as a lost connection and the new one connects at once.
   */
  replaceSocket(factory: SocketFactory, authenticates: boolean): void {
    const old = this.socket;
    this.socket = undefined;
    this.factory = factory;
    this.authenticates = authenticates;
    old?.disconnect();
    if (this.state === "idle" || this.state === "closed") return;
    this.lost("socket replaced");
    this.clearRetry();
    void this.attemptConnect("reconnect");
  }

  private wake(_reason: WakeReason): void {
    if ((this.state === "reconnecting" || this.state === "suspended") && !this.attempting) {
      this.clearRetry();
      void this.attemptConnect("reconnect");
    }
  }

  private async attemptConnect(tokenReason: TokenRequest["reason"]): Promise<void> {
    const generation = ++this.generation;
    this.attempting = true;
    if (this.authenticates) {
      let token: string | null;
      try {
        token = await this.options.getToken({ reason: tokenReason });
      } catch (error) {
        if (generation !== this.generation) return;
        this.attempting = false;
        this.events.emit("error", asError(error));
        this.scheduleRetry("token_error");
        return;
      }
      if (generation !== this.generation) return;
      if (token === null || token === "") {
        this.attempting = false;
        this.close("token_unavailable");
        return;
      }
      this.token = token;
    }
    this.forcedOut = undefined;
    this.currentSocket().connect();
  }

  private currentSocket(): SocketLike {
    if (this.socket !== undefined) return this.socket;
    const socket = this.factory(this.options.url, () => this.token);
    socket.on("connect", () => this.onConnect(socket));
    socket.on("connect_error", ((error: unknown) => this.onConnectError(socket, error)) as AnyListener);
    socket.on("disconnect", ((reason: string) => this.onDisconnect(socket, reason)) as AnyListener);
    socket.on("session:ready", ((ready: SessionReady) => this.onReady(socket, ready)) as AnyListener);
    socket.on("force_logout", ((payload: ForceLogout) => this.onForceLogout(socket, payload)) as AnyListener);
    for (const [event, listeners] of this.serverListeners) {
      for (const listener of listeners) socket.on(event, listener);
    }
    for (const listener of this.anyListeners) socket.onAny(listener);
    this.socket = socket;
    return socket;
  }

  private onConnect(socket: SocketLike): void {
    if (socket !== this.socket || this.state === "closed") return;
    this.attempting = false;
    this.clearSuspend();
    this.transition("connected", "connected");
    this.scheduleRefresh();
  }

  private onReady(socket: SocketLike, ready: SessionReady): void {
    if (socket !== this.socket) return;
    this.attempt = 0;
    const serverTime = Date.parse(ready.server_time);
    if (Number.isFinite(serverTime)) this.serverOffsetMs = serverTime - Date.now();
    this.scheduleRefresh();
    this.events.emit("ready", ready);
  }

  private onConnectError(socket: SocketLike, error: unknown): void {
    if (socket !== this.socket || this.state === "closed") return;
    this.attempting = false;
    const data = isRecord(error) && isRecord(error["data"]) ? error["data"] : undefined;
    const code = typeof data?.["code"] === "string" ? data["code"] : undefined;
    if (code !== undefined && FATAL_CONNECT_CODES.has(code)) {
      this.close(code.toLowerCase());
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    this.events.emit("error", new ParleyError(code ?? "CONNECT_ERROR", `Connect failed: ${message}`));
    if (code === "TOKEN_EXPIRED") {
      this.lost("token_expired");
      this.clearRetry();
      this.retryTimer = setTimeout(() => void this.attemptConnect("expired"), this.nextDelay());
      return;
    }
    this.scheduleRetry(code === undefined ? "connect_error" : `connect_error:${code}`);
  }

  private onDisconnect(socket: SocketLike, reason: string): void {
    if (socket !== this.socket) return;
    socket.discardBuffered();
    this.requests.failAll(reason);
    this.clearRefresh();
    if (this.state === "closed" || this.state === "idle") return;
    const forced = this.forcedOut;
    this.forcedOut = undefined;
    if (forced === "token_expired") {
      this.lost("token_expired");
      this.clearRetry();
      void this.attemptConnect("expired");
      return;
    }
    this.scheduleRetry(reason);
  }

  private onForceLogout(socket: SocketLike, payload: ForceLogout): void {
    if (socket !== this.socket) return;
    if (payload.reason === "token_expired") {
      this.forcedOut = payload.reason;
      return;
    }
    this.close(payload.reason);
  }

  /** The connection is gone: from connected or connecting, the state becomes `reconnecting`. */
  private lost(reason: string): void {
    if (this.state === "connected" || this.state === "connecting") {
      this.transition("reconnecting", reason);
      this.suspendTimer = setTimeout(() => {
        this.suspendTimer = undefined;
        if (this.state === "reconnecting") this.transition("suspended", "offline_too_long");
      }, this.options.suspendAfterMs);
    }
  }

  private scheduleRetry(reason: string): void {
    this.lost(reason);
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attemptConnect("reconnect");
    }, this.nextDelay());
  }

  private nextDelay(): number {
    return fullJitter(this.attempt++, this.options.backoff, this.options.random);
  }

  /** Ask for a fresh token shortly before this one expires and hand it over with `auth:refresh`. */
  private scheduleRefresh(delayMs?: number): void {
    this.clearRefresh();
    if (!this.authenticates || this.token === undefined) return;
    const exp = tokenExpiry(this.token);
    if (exp === undefined) return;
    const remaining = exp * 1000 - (Date.now() + this.serverOffsetMs);
    const lead = Math.min(this.options.refreshSkewMs, remaining / 2);
    const wait = delayMs ?? Math.max(0, remaining - lead);
    this.refreshTimer = setTimeout(() => void this.refresh(), wait);
  }

  private async refresh(): Promise<void> {
    this.refreshTimer = undefined;
    const generation = this.generation;
    const current = this.token;
    let token: string | null;
    try {
      token = await this.options.getToken({ reason: "refresh" });
    } catch (error) {
      if (generation !== this.generation || !this.connected) return;
      this.events.emit("error", asError(error));
      this.scheduleRefresh(REFRESH_RETRY_MS);
      return;
    }
    if (generation !== this.generation || !this.connected) return;
    if (token === null || token === "") {
      this.close("token_unavailable");
      return;
    }
    const newExp = tokenExpiry(token) ?? 0;
    const oldExp = current === undefined ? 0 : (tokenExpiry(current) ?? 0);
    if (newExp <= oldExp) {
      // Not fresher than the one the socket holds: ask again a little later, until it expires.
      this.scheduleRefresh(REFRESH_RETRY_MS);
      return;
    }
    try {
      await this.requests.request("auth:refresh", { token });
    } catch (error) {
      if (generation !== this.generation || !this.connected) return;
      if (error instanceof ParleyError && error.code === "SESSION_REVOKED") {
        this.close("session_revoked");
        return;
      }
      this.events.emit("error", asError(error));
      this.scheduleRefresh(REFRESH_RETRY_MS);
      return;
    }
    if (generation !== this.generation) return;
    this.token = token;
    this.scheduleRefresh();
  }

  private transition(current: ConnectionState, reason: string): void {
    const previous = this.state;
    if (previous === current) return;
    this.state = current;
    this.events.emit("state", { previous, current, reason });
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private clearSuspend(): void {
    if (this.suspendTimer !== undefined) clearTimeout(this.suspendTimer);
    this.suspendTimer = undefined;
  }

  private clearRefresh(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private clearTimers(): void {
    this.clearRetry();
    this.clearSuspend();
    this.clearRefresh();
  }
}
