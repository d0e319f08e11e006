/** Outbox entries in IndexedDB: one database per namespace, so a reload finds them again. */
import type { OutboxRecord, OutboxStore, OutboxStoreFactory } from "./outbox-store.js";

const STORE = "outbox";

export function indexedDbOutboxStore(prefix = "parley-outbox"): OutboxStoreFactory {
  return (namespace) => {
    const opened = open(`${prefix}:${namespace}`);
    return {
      load: async () => request<OutboxRecord[]>((await opened).transaction(STORE, "readonly").objectStore(STORE).getAll()),
      put: async (record) => complete((await opened).transaction(STORE, "readwrite"), (store) => store.put(record)),
      delete: async (clientMsgId) => complete((await opened).transaction(STORE, "readwrite"), (store) => store.delete(clientMsgId)),
    } satisfies OutboxStore;
  };
}

/** Whether this environment has IndexedDB (browsers do; Node does not). */
export function hasIndexedDb(): boolean {
  return typeof (globalThis as { indexedDB?: unknown }).indexedDB === "object";
}

function open(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(name, 1);
    opening.onupgradeneeded = () => {
      opening.result.createObjectStore(STORE, { keyPath: "clientMsgId" });
    };
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error ?? new Error(`IndexedDB ${name} could not be opened`));
  });
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

/** Resolve once the write is durable (the transaction completed), not merely requested. */
function complete(transaction: IDBTransaction, write: (store: IDBObjectStore) => IDBRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    write(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error ?? new Error("IndexedDB write failed"));
    transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB write aborted"));
  });
}
