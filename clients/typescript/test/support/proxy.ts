/**
 * A TCP proxy between clients and the server that the test controls: cut every connection, refuse
 * new ones for a while, and hold or drop bytes on the way (delayed and lost frames).
 */
import { type Server, type Socket, createConnection, createServer } from "node:net";

export interface ProxyStats {
  connections: number;
  cuts: number;
  droppedChunks: number;
  delayedChunks: number;
}

export interface Chaos {
  /** Chance that a chunk from the server is held before it goes on. */
  readonly delayChance: number;
  readonly maxDelayMs: number;
  /** Chance that a chunk makes the proxy cut that connection instead of passing it (a lost frame). */
  readonly dropChance: number;
}

export class TcpProxy {
  readonly stats: ProxyStats = { connections: 0, cuts: 0, droppedChunks: 0, delayedChunks: 0 };
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  private refusing = false;
  private chaos: Chaos | undefined;
  private random: () => number = Math.random;

  private constructor(
    private readonly targetPort: number,
    readonly port: number,
    server: Server,
  ) {
    this.server = server;
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const address = server.address();
    if (typeof address !== "object" || address === null) throw new Error("proxy has no port");
    const proxy = new TcpProxy(targetPort, address.port, server);
    server.on("connection", (client) => proxy.accept(client));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drop every open connection at once. */
  cut(): void {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    if (this.pairs.size > 0) this.stats.cuts++;
    this.pairs.clear();
  }

  /** Refuse (close at once) new connections until `allow()`. */
  refuse(): void {
    this.refusing = true;
  }

  allow(): void {
    this.refusing = false;
  }

  /** Delay and drop chunks from the server at random (`undefined`: pass everything untouched). */
  setChaos(chaos: Chaos | undefined, random: () => number = Math.random): void {
    this.chaos = chaos;
    this.random = random;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.stats.connections++;
    const upstream = createConnection({ host: "127.0.0.1", port: this.targetPort });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.on("data", (chunk: Buffer) => upstream.write(chunk));
    let queue = Promise.resolve();
    upstream.on("data", (chunk: Buffer) => {
      const chaos = this.chaos;
      if (chaos === undefined) {
        client.write(chunk);
        return;
      }
      if (this.random() < chaos.dropChance) {
        // A frame lost on the way: with TCP that means the connection breaks.
        this.stats.droppedChunks++;
        this.stats.cuts++;
        close();
        return;
      }
      const delay = this.random() < chaos.delayChance ? Math.floor(this.random() * chaos.maxDelayMs) : 0;
      if (delay > 0) this.stats.delayedChunks++;
      // Chunks keep their order: a delayed one holds back those behind it, as on a slow link.
      queue = queue.then(() => (delay > 0 ? new Promise((resolve) => setTimeout(resolve, delay)) : undefined)).then(() => {
        if (!client.destroyed) client.write(chunk);
      });
    });
  }
}
