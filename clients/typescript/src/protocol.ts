/**
 * The wire types, all generated from the server (`generated/protocol.ts`), and a few views of them.
 * No event or payload is described here by hand.
 */
import type { ClientToServerEvents, ServerToClientEvents } from "./generated/protocol.js";

export type * from "./generated/protocol.js";

export type ClientEvent = keyof ClientToServerEvents & string;
export type ServerEvent = keyof ServerToClientEvents & string;

/** The payload a client event takes. */
export type PayloadOf<E extends ClientEvent> = Parameters<ClientToServerEvents[E]>[0];

/** The ack a client event receives: `{ok: true, data}` or the error envelope. */
export type AckOf<E extends ClientEvent> = Parameters<
  Extract<Parameters<ClientToServerEvents[E]>, [unknown, unknown]>[1]
>[0];

/** The data of a successful ack. */
export type AckData<E extends ClientEvent> = Extract<AckOf<E>, { ok: true }>["data"];

/** The payload of a server event. */
export type ServerPayload<E extends ServerEvent> = Parameters<ServerToClientEvents[E]>[0];
