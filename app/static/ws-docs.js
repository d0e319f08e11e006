/* The /ws-docs page: search with live counts, the "try it" console on ParleySocket, its login helper
 * (local and dev servers), and the console as a sheet on small screens. Text is set with textContent
 * only, so nothing the server sends is interpreted as HTML. */
(function () {
  "use strict";

  const events = JSON.parse(document.getElementById("console-events").textContent);
  const examples = new Map(events.map((event) => [event.name, event.example]));
  const $ = (id) => document.getElementById(id);
  const ui = {
    search: $("search"), token: $("token"), connect: $("connect"), disconnect: $("disconnect"),
    status: $("status"), event: $("event"), payload: $("payload"), emit: $("emit"), clear: $("clear"), log: $("log"),
    count: $("search-count"), console: $("console"), toggle: $("console-toggle"), close: $("console-close"),
    login: $("login"), username: $("login-username"), password: $("login-password"),
  };
  let socket = null;

  function pretty(value) {
    return value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
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
    const example = examples.get(name);
    ui.payload.value = pretty(example);
    ui.payload.placeholder = example === null ? "this event takes no payload" : "";
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
    // An empty box emits the event with no payload, as an event that takes none expects.
    let payload;
    try {
      payload = ui.payload.value.trim() ? JSON.parse(ui.payload.value) : undefined;
    } catch (error) {
      log("error", name, { message: "the payload is not valid JSON: " + error.message });
      return;
    }
    log("emit", name, payload);
    socket.emit(name, payload, (response) => log("ack", name, response, Boolean(response && response.ok)));
  }

  /** Hide the events that do not match, in the page and in the sidebar, and count what is left. */
  function filter() {
    const query = ui.search.value.trim().toLowerCase();
    let shown = 0;
    let total = 0;
    for (const card of document.querySelectorAll("article.event")) {
      const hidden = query !== "" && !card.dataset.search.includes(query);
      card.classList.toggle("hidden", hidden);
      const entry = document.querySelector(`li.nav-event[data-event="${CSS.escape(card.id)}"]`);
      if (entry) entry.classList.toggle("hidden", hidden);
      total += 1;
      if (!hidden) shown += 1;
    }
    for (const block of document.querySelectorAll(".group, section.category")) {
      block.classList.toggle("hidden", block.querySelector("article.event:not(.hidden)") === null);
    }
    for (const category of document.querySelectorAll("li.nav-category")) {
      const count = category.querySelector(".count");
      const matching = category.querySelectorAll("li.nav-event:not(.hidden)").length;
      count.textContent = query === "" ? count.dataset.total : `${matching}/${count.dataset.total}`;
      category.classList.toggle("hidden", matching === 0);
    }
    ui.count.textContent = query === "" ? `${total} events` : `${shown} of ${total} events match`;
  }

  function openConsole(open) {
    ui.console.classList.toggle("open", open);
    ui.toggle.setAttribute("aria-expanded", String(open));
  }

  /** The login helper: username and password to an access token, with the same REST call an app makes. */
  async function logIn() {
    const body = { username: ui.username.value.trim(), password: ui.password.value, device: "ws-docs" };
    try {
      const response = await fetch(new URL("api/auth/login", serverBase()), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (!answer.success) {
        log("error", "login", answer.error);
        return;
      }
      ui.token.value = answer.data.access_token;
      ui.password.value = "";
      log("login", "login", { user: answer.data.user, expires_in: answer.data.expires_in });
    } catch (error) {
      log("error", "login", { message: String(error) });
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
      openConsole(true);
      ui.payload.focus();
    });
  }
  ui.toggle.addEventListener("click", () => openConsole(!ui.console.classList.contains("open")));
  ui.close.addEventListener("click", () => openConsole(false));
  if (ui.login) ui.login.addEventListener("click", logIn);
  if (window.matchMedia("(max-width: 760px)").matches) $("nav-details").open = false;
  if (events.length > 0) selectEvent(events[0].name);
  setStatus("disconnected", "disconnected");
})();
