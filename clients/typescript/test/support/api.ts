/** The REST calls the tests make as a user would: register, log in, refresh, create conversations. */
import { createHmac, randomUUID } from "node:crypto";

import type { MessageOut } from "../../src/protocol.js";

export interface Session {
  readonly userId: string;
  readonly username: string;
  readonly password: string;
  accessToken: string;
  refreshToken: string;
}

export async function call<T>(url: string, method: string, body?: unknown, token?: string): Promise<T> {
  const headers: { [name: string]: string } = { "content-type": "application/json" };
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const response = await fetch(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const envelope = (await response.json()) as { data: T; error: { code: string; message: string } | null };
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${JSON.stringify(envelope.error)}`);
  return envelope.data;
}

/** A new user, logged in on `device`. */
export async function signUp(base: string, prefix = "user", device = "tests"): Promise<Session> {
  const username = `${prefix}-${randomUUID().slice(0, 8)}`;
  const password = "correct-horse-42";
  await call(`${base}/api/auth/register`, "POST", { username, password });
  return logIn(base, username, password, device);
}

export async function logIn(base: string, username: string, password: string, device = "tests"): Promise<Session> {
  const pair = await call<{ access_token: string; refresh_token: string; user: { id: string } }>(`${base}/api/auth/login`, "POST", {
    username,
    password,
    device,
  });
  return { userId: pair.user.id, username, password, accessToken: pair.access_token, refreshToken: pair.refresh_token };
}

/** Rotate the session's refresh token for a fresh access token (what an app's getToken does). */
export async function refresh(base: string, session: Session): Promise<string> {
  const pair = await call<{ access_token: string; refresh_token: string }>(`${base}/api/auth/refresh`, "POST", {
    refresh_token: session.refreshToken,
  });
  session.accessToken = pair.access_token;
  session.refreshToken = pair.refresh_token;
  return pair.access_token;
}

export async function createGroup(base: string, owner: Session, members: readonly Session[], title = "tests"): Promise<string> {
  const conversation = await call<{ id: string }>(
    `${base}/api/conversations`,
    "POST",
    { kind: "group", title, participant_ids: members.map((member) => member.userId) },
    owner.accessToken,
  );
  return conversation.id;
}

/** Every message of a conversation as the server holds it, in seq order. */
export async function history(base: string, session: Session, conversationId: string): Promise<MessageOut[]> {
  const all: MessageOut[] = [];
  for (;;) {
    const after = all.at(-1)?.seq ?? 0;
    const page = await call<{ items: MessageOut[]; has_more: boolean }>(
      `${base}/api/conversations/${conversationId}/messages?after_seq=${after}&limit=200`,
      "GET",
      undefined,
      session.accessToken,
    );
    all.push(...page.items);
    if (!page.has_more || page.items.length === 0) return all;
  }
}

/** A message sent over REST (as another device of the user would). */
export async function postMessage(base: string, session: Session, conversationId: string, body: string): Promise<MessageOut> {
  return call<MessageOut>(`${base}/api/conversations/${conversationId}/messages`, "POST", { body }, session.accessToken);
}

/**
 * An HS256 access token without a session (`sid`), as an external issuer would mint it: the
 * server accepts it on its signature and expiry alone, so it outlives a restart of the server.
 */
export function externalToken(secret: string, userId: string, ttlSeconds = 3600): string {
  const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub: userId, iat: now, exp: now + ttlSeconds })}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}
