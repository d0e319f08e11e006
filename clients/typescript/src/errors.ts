/** Failures the client reports: a server ack error, a lost ack, or a lost connection. */

export type ErrorCode =
  | "UNAUTHORIZED"
  | "TOKEN_EXPIRED"
  | "SESSION_REVOKED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "VALIDATION_ERROR"
  | "RATE_LIMITED"
  | "PAYLOAD_TOO_LARGE"
  | "CONFLICT"
  | "MESSAGE_SEND_FAILED"
  | "UNAVAILABLE"
  | "INTERNAL";

/** Codes that come from this client rather than the server. */
export type LocalCode = "ACK_TIMEOUT" | "DISCONNECTED" | "EXPIRED" | "CANCELLED" | "HTTP_ERROR";

export class ParleyError extends Error {
  override readonly name = "ParleyError";

  constructor(
    readonly code: ErrorCode | LocalCode | (string & {}),
    message: string,
    readonly details: { readonly [key: string]: unknown } = {},
    /** The server asked to undo an optimistic update (`action: "ROLLBACK"`). */
    readonly rollback = false,
  ) {
    super(message);
  }

  /** Seconds the server asked to wait (`RATE_LIMITED`'s `details.retry_after`), if any. */
  get retryAfter(): number | undefined {
    const value = this.details["retry_after"];
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
  }
}

/** Codes after which the same request may succeed later: retried with the same ids. */
const TRANSIENT = new Set<string>([
  "RATE_LIMITED",
  "UNAVAILABLE",
  "INTERNAL",
  "CONFLICT",
  "MESSAGE_SEND_FAILED",
  "ACK_TIMEOUT",
  "DISCONNECTED",
  "UNAUTHORIZED",
  "TOKEN_EXPIRED",
]);

export function isTransient(error: ParleyError): boolean {
  return TRANSIENT.has(error.code);
}

export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
