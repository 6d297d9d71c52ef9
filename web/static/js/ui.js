// Small shared helpers: REST with the CSRF header, element building, the call view.

import { has, roleName, t } from "./i18n.js";

let csrf = null;

/** fetch JSON; official pages send the CSRF token, kiosk/invite pages a Bearer token. */
export async function api(path, { method = "GET", body, bearer, noCsrf } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (method !== "GET" && !bearer && !noCsrf) {
    if (csrf === null) {
      const me = await fetch("/api/me").then((r) => (r.ok ? r.json() : {}));
      csrf = me.csrf_token || "";
    }
    headers["X-CSRF-Token"] = csrf;
  }
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const code = data && data.error && data.error.code;
    // a person reads the page's language: a known code has its text, the server's is English
    const localized = code && has(`err_${code}`) ? t(`err_${code}`, data.error) : null;
    const err = new Error(localized || (data && data.error && data.error.message) || `${res.status}`);
    err.status = res.status;
    err.code = code;
    throw err;
  }
  return data;
}

export function setCsrf(token) {
  csrf = token;
}

/** h("div", {class: "x", onclick}, child, "text") */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

export function show(el, on = true) {
  if (typeof el === "string") el = $(el);
  if (el) el.hidden = !on;
}

/** Show one of the page's views (sections with class "view"). */
export function view(id) {
  for (const el of document.querySelectorAll(".view")) el.hidden = el.id !== id;
  const active = document.getElementById(id);
  const heading = active && active.querySelector("h2, h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

/** Announce to screen readers through the page's live region. */
export function say(text) {
  const live = document.getElementById("live");
  if (live) live.textContent = text;
}

/** The connection banner (#conn) follows the signal. A refused credential closes the signal
 * for good: the banner then says `refusedKey` and never claims it is reconnecting. */
export function bindConnection(signal, { refusedKey = "conn_refused" } = {}) {
  const el = document.getElementById("conn");
  if (!el) return;
  const set = (key, cls) => {
    el.dataset.i18n = key;
    el.textContent = t(key);
    el.className = `conn ${cls}`;
  };
  let refused = false;
  set("connecting", "wait");
  signal.on("ready", () => set("online", "ok"));
  // a signal closed for good (refused, or taken over elsewhere) does not come back: never
  // say it is reconnecting then
  signal.on("down", () => set(signal.closed ? (refused ? refusedKey : "conn_closed") : "offline", "bad"));
  signal.on("fatal", (err) => {
    // ws.js closes the signal for good right after a refused credential
    if (err && err.code === "unauthenticated") {
      refused = true;
      set(refusedKey, "bad");
    }
  });
}

function fmtStats(s) {
  if (!s) return "";
  const parts = [];
  if (s.bitrate_kbps != null) parts.push(`${Math.round(s.bitrate_kbps)} kb/s`);
  if (s.fps != null) parts.push(`${s.fps} fps`);
  if (s.rtt_ms != null) parts.push(`${s.rtt_ms} ms`);
  if (s.packets_lost) parts.push(`lost ${s.packets_lost}`);
  return parts.join(" · ");
}

function qualityLevel(s) {
  if (!s) return "unknown";
  if ((s.fps != null && s.fps < 10) || (s.rtt_ms != null && s.rtt_ms > 400)) return "poor";
  if ((s.fps != null && s.fps < 24) || (s.rtt_ms != null && s.rtt_ms > 150)) return "fair";
  return "good";
}

/**
 * The call view: a grid of tiles (self + one per participant), names and roles, recording
 * indicator, per-participant connection quality.
 */
export class CallView {
  constructor(grid, { list, recordingEl, selfOnly = false, mirrorSelf = true } = {}) {
    this.grid = grid;
    this.selfOnly = selfOnly; // only the own picture (a page that receives nothing)
    this.mirrorSelf = mirrorSelf; // a front camera is shown mirrored, like a mirror
    this.list = list || null;
    this.recordingEl = recordingEl || null;
    this.participants = new Map(); // id -> {id, name, role}
    this.selfId = null;
    this.tiles = new Map(); // id -> {fig, video, stream key}
    this.stats = new Map();
    this.speaking = new Set(); // participant ids speaking now (media.speaking)
    this.remote = new Map();
    this.selfStream = null;
    this.extra = () => [];
  }

  setSelf(id, stream) {
    this.selfId = id;
    this.selfStream = stream;
    this.render();
  }

  setParticipants(list) {
    this.participants = new Map(list.map((p) => [p.id, p]));
    this.render();
  }

  upsert(p) {
    this.participants.set(p.id, { ...(this.participants.get(p.id) || {}), ...p });
    this.render();
  }

  drop(id) {
    this.participants.delete(id);
    this.speaking.delete(id);
    this.render();
  }

  setRemote(map) {
    this.remote = map;
    this.render();
  }

  setSpeaking(id, on) {
    if (on) this.speaking.add(id);
    else this.speaking.delete(id);
    const tile = this.tiles.get(id);
    if (tile) this._speaking(tile, id);
  }

  _speaking(tile, id) {
    const on = this.speaking.has(id);
    tile.fig.classList.toggle("speaking", on);
    tile.talk.textContent = on ? t("speaking_now") : "";
  }

  setStats(id, stats) {
    this.stats.set(id, stats);
    const tile = this.tiles.get(id);
    if (tile) this._quality(tile, id);
  }

  setRecording(on) {
    if (!this.recordingEl) return;
    this.recordingEl.hidden = false;
    this.recordingEl.dataset.i18n = on ? "recording" : "not_recording";
    this.recordingEl.textContent = t(on ? "recording" : "not_recording");
    this.recordingEl.classList.toggle("on", !!on);
  }

  _quality(tile, id) {
    const s = this.stats.get(id);
    tile.quality.textContent = s ? `${t("quality")}: ${fmtStats(s)}` : "";
    tile.quality.dataset.level = qualityLevel(s);
  }

  render() {
    const ids = new Set();
    if (this.selfId) ids.add(this.selfId);
    if (!this.selfOnly) {
      for (const id of this.participants.keys()) ids.add(id);
      for (const id of this.remote.keys()) ids.add(id);
    }
    for (const id of ids) {
      const p = this.participants.get(id) || { id, name: "", role: "" };
      const isSelf = id === this.selfId;
      const tracks = isSelf ? null : this.remote.get(id);
      let tile = this.tiles.get(id);
      if (!tile) {
        const video = h("video", { autoplay: true, playsinline: true });
        const caption = h("figcaption");
        const quality = h("span", { class: "quality", role: "status" });
        const talk = h("span", { class: "talk", "aria-live": "polite" });
        const fig = h("figure", { class: "tile", "data-participant": id }, video, caption, quality, talk);
        tile = { fig, video, caption, quality, talk, key: "" };
        this.tiles.set(id, tile);
        this.grid.append(fig);
      }
      const label = `${isSelf ? t("you") + " · " : ""}${p.name || ""}${p.role ? " · " + roleName(p.role) : ""}`;
      tile.caption.textContent = label;
      tile.video.setAttribute("aria-label", label);
      tile.fig.dataset.role = p.role || "";
      tile.fig.classList.toggle("self", isSelf);
      tile.fig.classList.toggle("mirror", isSelf && this.mirrorSelf);
      let key = "";
      let stream = null;
      if (isSelf && this.selfStream) {
        stream = this.selfStream;
        key = stream.id;
        tile.video.muted = true;
      } else if (tracks) {
        const list = [tracks.video, tracks.audio].filter(Boolean);
        key = list.map((x) => x.id).join(",");
        if (key !== tile.key) stream = new MediaStream(list);
      }
      if (key !== tile.key) {
        tile.key = key;
        tile.video.srcObject = stream;
        if (stream) tile.video.play().catch(() => {});
      }
      tile.fig.classList.toggle("nomedia", !key);
      this._quality(tile, id);
      this._speaking(tile, id);
    }
    for (const [id, tile] of this.tiles) {
      if (!ids.has(id)) {
        tile.fig.remove();
        this.tiles.delete(id);
      }
    }
    if (this.list) {
      this.list.replaceChildren(
        ...[...this.participants.values()].map((p) =>
          h("li", { "data-participant": p.id }, `${p.name || "?"} · ${roleName(p.role)}`, ...this.extra(p)),
        ),
      );
    }
  }
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "zh-CN", { hour12: false });
}
