/* The /ws-docs page: search, and the "try it" console on ParleySocket. Text is set with
 * textContent only, so nothing the server sends is interpreted as HTML. */
(function () {
  "use strict";

  const events = JSON.parse(document.getElementById("console-events").textContent);
  const examples = new Map(events.map((event) => [event.name, event.example]));
  const $ = (id) => document.getElementById(id);
  const ui = {
    search: $("search"), token: $("token"), connect: $("connect"), disconnect: $("disconnect"),
    status: $("status"), event: $("event"), payload: $("payload"), emit: $("emit"), clear: $("clear"), log: $("log"),
  };
  let socket = null;

  function pretty(value) {
    return value === undefined ? "" : JSON.stringify(value, null, 2);
  }

  function log(kind, event, data, ok) {
    const entry = document.createElement("li");
    entry.className = "entry";
    entry.dataset.kind = kind;
    if (ok !== undefined) entry.dataset.ok = String(ok);
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = new Date().toISOString();
    const label = document.createElement("span");
    label.className = "kind";
    label.textContent = kind;
    const name = document.createElement("code");
    name.textContent = event;
    entry.append(when, label, name);
    if (data !== undefined) {
      const body = document.createElement("pre");
      body.textContent = pretty(data);
      entry.append(body);
    }
    ui.log.prepend(entry);
  }

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
    const connected = state === "connected";
    ui.emit.disabled = !connected;
    ui.disconnect.disabled = !connected && state !== "connecting";
    ui.connect.disabled = connected || state === "connecting";
  }

  function selectEvent(name) {
    ui.event.value = name;
    ui.payload.value = pretty(examples.get(name));
  }

  /** The server's root as this page sees it: the page's URL without `/ws-docs`. */
  function serverBase() {
    return window.location.href.split(/[?#]/)[0].replace(/\/ws-docs\/?$/, "/");
  }

  function connect() {
    const token = ui.token.value.trim();
    if (!token) {
      log("error", "connect", { message: "paste an access token first" });
      return;
    }
    setStatus("connecting", "connecting…");
    socket = new ParleySocket(serverBase(), { token: token });
    socket.on("connect", (data) => {
      setStatus("connected", "connected");
      log("connect", "connect", data);
    });
    socket.on("connect_error", (data) => {
      setStatus("error", "refused: " + ((data && (data.code || data.message)) || "error"));
      log("error", "connect_error", data);
    });
    socket.on("disconnect", (reason) => {
      setStatus("disconnected", "disconnected");
      log("disconnect", "disconnect", { reason: reason });
    });
    socket.on("*", (event, ...args) => log("event", event, args.length === 1 ? args[0] : args));
    socket.connect();
  }

  function emit() {
    const name = ui.event.value;
    let payload;
    try {
      payload = JSON.parse(ui.payload.value || "{}");
    } catch (error) {
      log("error", name, { message: "the payload is not valid JSON: " + error.message });
      return;
    }
    log("emit", name, payload);
    socket.emit(name, payload, (response) => log("ack", name, response, Boolean(response && response.ok)));
  }

  function filter() {
    const query = ui.search.value.trim().toLowerCase();
    for (const card of document.querySelectorAll("article.event")) {
      card.classList.toggle("hidden", query !== "" && !card.dataset.search.includes(query));
    }
    for (const block of document.querySelectorAll(".group, section.category")) {
      block.classList.toggle("hidden", block.querySelector("article.event:not(.hidden)") === null);
    }
  }

  ui.connect.addEventListener("click", connect);
  ui.disconnect.addEventListener("click", () => socket && socket.disconnect());
  ui.emit.addEventListener("click", emit);
  ui.clear.addEventListener("click", () => ui.log.replaceChildren());
  ui.event.addEventListener("change", () => selectEvent(ui.event.value));
  ui.search.addEventListener("input", filter);
  for (const button of document.querySelectorAll("button.try")) {
    button.addEventListener("click", () => {
      selectEvent(button.dataset.event);
      ui.payload.focus();
    });
  }
  if (events.length > 0) selectEvent(events[0].name);
  setStatus("disconnected", "disconnected");
})();
