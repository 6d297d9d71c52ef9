// Signaling client for /ws (protocol v1, signaling/protocol.py).
//
// - hello first (device/invite token, or the login cookie), with the resume token kept in
//   sessionStorage so a reload or a network blip gets its memberships back;
// - requests carry ids and resolve with the reply's data (reject with {code, message});
// - events are dispatched by type; "*" receives every event;
// - ping every 5 s (the hub drops a client silent for 15 s);
// - reconnects with backoff; every successful hello emits "ready" with the hello reply and
//   a flag saying whether it was a reconnect.

const PING_MS = 5000;

export class SignalError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

/** The close code of a connection whose memberships another connection took over. */
const SUPERSEDED = 4001;

export class Signal {
  /**
   * @param {{token?: string, storageKey?: string, lang?: () => string}} opts
   */
  constructor(opts = {}) {
    this.token = opts.token || null;
    this.storageKey = "pg.resume." + (opts.storageKey || "default");
    this.lang = opts.lang || (() => document.documentElement.lang || "zh");
    this.ws = null;
    this.n = 0;
    this.pending = new Map();
    this.handlers = new Map();
    this.hello = null;
    this.connected = false;
    this.closed = false;
    this.attempt = 0;
    this.readyCount = 0;
    this._ping = null;
  }

  on(type, cb) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(cb);
    return () => this.handlers.get(type).delete(cb);
  }

  _emit(type, data) {
    for (const key of [type, "*"]) {
      for (const cb of this.handlers.get(key) || []) {
        try {
          cb(data, type);
        } catch (err) {
          console.error("signal handler for", type, "failed", err);
        }
      }
    }
  }

  connect() {
    if (this.closed) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => this._sayHello(true);
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev);
    ws.onerror = () => {};
  }

  async _sayHello(withResume) {
    const msg = { type: "hello", lang: this.lang().slice(0, 8) };
    if (this.token) msg.token = this.token;
    const resume = withResume ? sessionStorage.getItem(this.storageKey) : null;
    if (resume) msg.resume = resume;
    try {
      const data = await this._request(msg, 10000, true);
      sessionStorage.setItem(this.storageKey, data.resume_token);
      this.hello = data;
      this.connected = true;
      this.attempt = 0;
      this._startPing();
      const reconnect = this.readyCount > 0;
      this.readyCount += 1;
      this._emit("ready", { ...data, reconnect });
    } catch (err) {
      if (resume && err.code === "unauthenticated") {
        sessionStorage.removeItem(this.storageKey);
        return this._sayHello(false);
      }
      this._emit("fatal", err);
      if (err.code === "unauthenticated") this.close();
    }
  }

  _startPing() {
    clearInterval(this._ping);
    this._ping = setInterval(() => this.send({ type: "ping" }), PING_MS);
  }

  _onMessage(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if ((msg.type === "result" || msg.type === "error") && msg.id && this.pending.has(msg.id)) {
      const { resolve, reject, timer } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      clearTimeout(timer);
      if (msg.type === "result") resolve(msg.data || {});
      else reject(new SignalError(msg.code, msg.message));
      return;
    }
    if (msg.type === "error") {
      this._emit("error", msg);
      return;
    }
    this._emit(msg.type, msg);
  }

  _onClose(ws, ev) {
    if (ws !== this.ws) return;
    // 4001: this page's place was taken by a newer connection of the same person (another
    // tab, a resumed reload); reconnecting would take it back and start a tug of war
    if (ev && ev.code === SUPERSEDED) {
      this.closed = true;
      this._emit("superseded", {});
    }
    this.connected = false;
    clearInterval(this._ping);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new SignalError("offline", "connection lost"));
    }
    this.pending.clear();
    this._emit("down", {});
    if (this.closed) return;
    const delay = Math.min(5000, 300 * 2 ** this.attempt);
    this.attempt += 1;
    setTimeout(() => this.connect(), delay);
  }

  /** Send a message without waiting for a reply. */
  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  /** Send a request; resolves with the reply's data, rejects with SignalError. */
  request(type, fields = {}, timeoutMs = 10000) {
    if (!this.connected) return Promise.reject(new SignalError("offline", "not connected"));
    return this._request({ type, ...fields }, timeoutMs, false);
  }

  _request(msg, timeoutMs) {
    this.n += 1;
    const id = `c${this.n}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalError("timeout", `${msg.type}: no reply`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (!this.send({ ...msg, id })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new SignalError("offline", "not connected"));
      }
    });
  }

  /** Drop the socket (tests use it to simulate a network blip); reconnects by itself. */
  drop() {
    if (this.ws) this.ws.close();
  }

  close() {
    this.closed = true;
    clearInterval(this._ping);
    if (this.ws) this.ws.close();
  }
}
