/** Waiting on the client's own events (never on a fixed sleep): resolve when a condition holds. */
import type { ClientEvents, ParleyClient } from "../../src/index.js";

type EventName = keyof ClientEvents & string;

/** Resolve once `condition()` is true, checked now and after each of `events`; fail after `timeoutMs`. */
export function until(
  client: ParleyClient,
  condition: () => boolean,
  events: readonly EventName[],
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  if (condition()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const stops: (() => void)[] = [];
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      for (const stop of stops) stop();
      if (error === undefined) resolve();
      else reject(error);
    };
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), timeoutMs);
    for (const event of events) {
      stops.push(
        client.on(event, () => {
          if (condition()) finish();
        }),
      );
    }
  });
}

/** Resolve with the state change that reaches `state`. */
export function reaches(client: ParleyClient, state: ClientEvents["state"]["current"], timeoutMs = 15_000): Promise<ClientEvents["state"]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for state ${state} (now ${client.state})`));
    }, timeoutMs);
    const stop = client.on("state", (change) => {
      if (change.current !== state) return;
      clearTimeout(timer);
      stop();
      resolve(change);
    });
  });
}
