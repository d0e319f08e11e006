/*
 * A small Socket.IO v5 client (Engine.IO v4, websocket transport only) for the /ws-docs console.
 *
 *   const socket = new ParleySocket("https://chat.example.com", { token });
 *   socket.on("connect", () => socket.emit("room:join", { room: "broadcast:all" }, (ack) => ...));
 *   socket.on("*", (event, payload) => ...);   // every server event
 *   socket.connect();
 *
 * Engine.IO packets: 0 open, 1 close, 2 ping, 3 pong, 4 message. Socket.IO packets inside a
 * message: 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR (5 and 6 carry binary data,
 * which this client does not support). Only the default namespace "/" is used.
 */
(function (global) {
  "use strict";

  const ENGINE = { OPEN: "0", CLOSE: "1", PING: "2", PONG: "3", MESSAGE: "4" };
  const SOCKET = { CONNECT: "0", DISCONNECT: "1", EVENT: "2", ACK: "3", CONNECT_ERROR: "4" };

  /** The Socket.IO path is taken relative to the base URL, so a server behind a path prefix works. */
  function websocketUrl(baseUrl, path) {
    const base = baseUrl.endsWith("/") ? baseUrl : baseUrl + "/";
    const url = new URL(path.replace(/^\//, ""), base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("EIO", "4");
    url.searchParams.set("transport", "websocket");
    return url.toString();
  }

  /** Split "<ackId?><json?>" (the namespace "/" is implicit). */
  function parseBody(body) {
    const match = /^(\d*)([\s\S]*)$/.exec(body);
    const id = match[1] === "" ? null : Number(match[1]);
    return { id: id, data: match[2] === "" ? undefined : JSON.parse(match[2]) };
  }

  class ParleySocket {
    constructor(baseUrl, options) {
      this.url = websocketUrl(baseUrl, (options && options.path) || "/socket.io/");
      this.auth = options && options.token ? { token: options.token } : undefined;
      this.listeners = new Map();
      this.acks = new Map();
      this.nextAckId = 0;
      this.connected = false;
      this.ws = null;
      this.heartbeat = null;
      this.heartbeatDeadline = 0;
    }

    on(event, listener) {
      if (!this.listeners.has(event)) this.listeners.set(event, []);
      this.listeners.get(event).push(listener);
      return this;
    }

    fire(event, ...args) {
      for (const listener of this.listeners.get(event) || []) listener(...args);
    }

    connect() {
      this.ws = new WebSocket(this.url);
      this.ws.onmessage = (message) => {
        if (typeof message.data === "string") this.onEnginePacket(message.data);
      };
      this.ws.onerror = () => this.fire("connect_error", { message: "websocket error" });
      this.ws.onclose = (event) => this.closed(event.reason || "transport close");
      return this;
    }

    /** Emit `event` with one payload (none when `payload` is undefined); `ack(response)` is called
     * with the server's answer. */
    emit(event, payload, ack) {
      if (!this.connected) throw new Error("not connected");
      let id = "";
      if (typeof ack === "function") {
        id = String(this.nextAckId++);
        this.acks.set(Number(id), ack);
      }
      this.send(ENGINE.MESSAGE + SOCKET.EVENT + id + JSON.stringify(payload === undefined ? [event] : [event, payload]));
      return this;
    }

    disconnect() {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        if (this.connected) this.send(ENGINE.MESSAGE + SOCKET.DISCONNECT);
        this.ws.close(1000, "io client disconnect");
      }
      this.closed("io client disconnect");
    }

    send(text) {
      this.ws.send(text);
    }

    closed(reason) {
      clearTimeout(this.heartbeat);
      const wasConnected = this.connected;
      this.connected = false;
      this.acks.clear();
      if (wasConnected) this.fire("disconnect", reason);
    }

    armHeartbeat() {
      clearTimeout(this.heartbeat);
      this.heartbeat = setTimeout(() => {
        this.ws.close(4000, "ping timeout");
        this.closed("ping timeout");
      }, this.heartbeatDeadline);
    }

    onEnginePacket(packet) {
      const type = packet[0];
      const body = packet.slice(1);
      if (type === ENGINE.OPEN) {
        const handshake = JSON.parse(body);
        this.heartbeatDeadline = handshake.pingInterval + handshake.pingTimeout;
        this.armHeartbeat();
        this.send(ENGINE.MESSAGE + SOCKET.CONNECT + (this.auth ? JSON.stringify(this.auth) : ""));
      } else if (type === ENGINE.PING) {
        this.armHeartbeat();
        this.send(ENGINE.PONG);
      } else if (type === ENGINE.CLOSE) {
        this.ws.close();
      } else if (type === ENGINE.MESSAGE) {
        this.onSocketPacket(body);
      }
    }

    onSocketPacket(packet) {
      const type = packet[0];
      if (packet[1] === "/") return; // a packet of another namespace
      const { id, data } = parseBody(packet.slice(1));
      if (type === SOCKET.CONNECT) {
        this.connected = true;
        this.fire("connect", data);
      } else if (type === SOCKET.CONNECT_ERROR) {
        this.fire("connect_error", data);
        this.ws.close(1000, "connect refused");
      } else if (type === SOCKET.DISCONNECT) {
        this.ws.close(1000, "io server disconnect");
        this.closed("io server disconnect");
      } else if (type === SOCKET.EVENT && Array.isArray(data)) {
        if (id !== null) this.send(ENGINE.MESSAGE + SOCKET.ACK + id + "[]");
        this.fire(data[0], ...data.slice(1));
        this.fire("*", data[0], ...data.slice(1));
      } else if (type === SOCKET.ACK && id !== null && this.acks.has(id)) {
        const ack = this.acks.get(id);
        this.acks.delete(id);
        ack(...(Array.isArray(data) ? data : [data]));
      } else {
        this.fire("error", new Error("unsupported packet type " + type));
      }
    }
  }

  global.ParleySocket = ParleySocket;
})(window);
