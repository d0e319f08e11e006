/** Signals from the page that the network may be back: `online`, `pageshow`, a tab becoming visible. */

export type WakeReason = "online" | "pageshow" | "visible";

export interface Environment {
  /** Call `listener` whenever the network may be back; returns a function that stops it. */
  onWake(listener: (reason: WakeReason) => void): () => void;
}

/** The browser's window and document; in Node (no window) nothing ever wakes. */
export function browserEnvironment(): Environment {
  return {
    onWake(listener) {
      const target = (globalThis as { window?: EventTarget }).window;
      const doc = (globalThis as { document?: Document }).document;
      if (target === undefined) return () => undefined;
      const online = (): void => listener("online");
      const pageshow = (): void => listener("pageshow");
      const visibility = (): void => {
        if (doc?.visibilityState === "visible") listener("visible");
      };
      target.addEventListener("online", online);
      target.addEventListener("pageshow", pageshow);
      doc?.addEventListener("visibilitychange", visibility);
      return () => {
        target.removeEventListener("online", online);
        target.removeEventListener("pageshow", pageshow);
        doc?.removeEventListener("visibilitychange", visibility);
      };
    },
  };
}

/** The claims of a JWT, read without verifying it (the server verifies). */
function tokenClaims(token: string): { [claim: string]: unknown } | undefined {
  const part = token.split(".")[1];
  if (part === undefined) return undefined;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const claims: unknown = JSON.parse(atob(base64));
    return typeof claims === "object" && claims !== null ? (claims as { [claim: string]: unknown }) : undefined;
  } catch {
    return undefined;
  }
}

/** Seconds-since-epoch `exp` of a JWT. */
export function tokenExpiry(token: string): number | undefined {
  const exp = tokenClaims(token)?.["exp"];
  return typeof exp === "number" ? exp : undefined;
}

/** The `sub` claim of a JWT: the user id. */
export function tokenSubject(token: string): string | undefined {
  const sub = tokenClaims(token)?.["sub"];
  return typeof sub === "string" ? sub : undefined;
}
