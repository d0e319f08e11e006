/** A client on a scripted socket with fake timers: the unit tests' stage. */
import * as FakeTimers from "@sinonjs/fake-timers";

type InstalledClock = ReturnType<typeof FakeTimers.install>;

import { type ClientEvents, ParleyClient, type ParleyClientOptions, type WakeReason } from "../../src/index.js";
import { FakeServer, USER_ID, fakeToken } from "./fake-socket.js";

export const START = Date.parse("2026-11-30T12:00:00Z");

export interface Stage {
  readonly clock: InstalledClock;
  readonly server: FakeServer;
  readonly client: ParleyClient;
  readonly states: string[];
  readonly errors: Error[];
  readonly events: { [E in keyof ClientEvents]?: ClientEvents[E][] };
  wake(reason: WakeReason): void;
  /** Let promises settle and timers due by `ms` run. */
  tick(ms?: number): Promise<void>;
  /** Connect and accept the first socket with this session:ready (fresh defaults otherwise). */
  connected(ready?: Parameters<FakeServer["socket"]["accept"]>[0]): Promise<void>;
  done(): void;
}

export function stage(options: Partial<ParleyClientOptions> = {}): Stage {
  const clock = FakeTimers.install({ now: START, toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
  const server = new FakeServer();
  const wakeListeners = new Set<(reason: WakeReason) => void>();
  const client = new ParleyClient("http://parley.test", {
    getToken: () => fakeToken(START / 1000 + 3600),
    userId: USER_ID,
    socketFactory: server.factory,
    environment: {
      onWake: (listener) => {
        wakeListeners.add(listener);
        return () => wakeListeners.delete(listener);
      },
    },
    tabs: "independent",
    random: () => 0.5,
    ...options,
  });
  const states: string[] = [];
  const errors: Error[] = [];
  const events: Stage["events"] = {};
  client.on("state", (change) => states.push(`${change.previous}>${change.current}:${change.reason}`));
  client.on("error", (error) => errors.push(error));
  for (const name of ["message", "gap", "removed", "outbox", "unread", "presence", "typing"] as const) {
    client.on(name, (payload) => {
      (events[name] ??= [] as never[]).push(payload as never);
    });
  }
  const tick = async (ms = 0): Promise<void> => {
    await clock.tickAsync(ms);
  };
  return {
    clock,
    server,
    client,
    states,
    errors,
    events,
    wake: (reason) => {
      for (const listener of wakeListeners) listener(reason);
    },
    tick,
    connected: async (ready) => {
      await client.connect();
      await tick();
      server.socket.accept(ready);
      await tick();
    },
    done: () => {
      client.close();
      clock.uninstall();
    },
  };
}
