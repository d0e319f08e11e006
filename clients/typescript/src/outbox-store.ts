/**
 * Where outbox entries live until the server has stored them. Pluggable: memory (Node, tests),
 * IndexedDB (browsers, survives a reload), or anything with these three calls.
 */

/** An outbox entry as stored: what is needed to send it again with the same `client_msg_id`. */
export interface OutboxRecord {
  readonly clientMsgId: string;
  readonly conversationId: string;
  readonly body: string;
  /** When the app sent it, ms since the epoch; entries older than the outbox's max age expire. */
  readonly createdAt: number;
  /** Send order among entries of the same conversation. */
  readonly order: number;
  readonly status: "queued" | "sending" | "failed";
  readonly attempts: number;
  readonly error?: { readonly code: string; readonly message: string; readonly rollback: boolean };
}

export interface OutboxStore {
  load(): Promise<OutboxRecord[]>;
  put(record: OutboxRecord): Promise<void>;
  delete(clientMsgId: string): Promise<void>;
}

/** Opens the store of one namespace (one user, or one user's tab when tabs are independent). */
export type OutboxStoreFactory = (namespace: string) => OutboxStore;

/** Entries kept in memory, shared by clients of the same namespace in one process. */
export function memoryOutboxStore(): OutboxStoreFactory {
  const namespaces = new Map<string, Map<string, OutboxRecord>>();
  return (namespace) => {
    let records = namespaces.get(namespace);
    if (records === undefined) {
      records = new Map();
      namespaces.set(namespace, records);
    }
    const held = records;
    return {
      load: () => Promise.resolve([...held.values()]),
      put: (record) => {
        held.set(record.clientMsgId, record);
        return Promise.resolve();
      },
      delete: (clientMsgId) => {
        held.delete(clientMsgId);
        return Promise.resolve();
      },
    };
  };
}
