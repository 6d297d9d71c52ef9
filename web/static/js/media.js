// One RTCPeerConnection per participant to the media worker (MEDIA.md, docs/media.md).
//
// The client sends the first offer (its camera and microphone, or only a data channel for
// watch-only roles); the worker answers and later re-offers when subscriptions change. The
// client is the polite side: a worker offer that collides with ours makes us roll back and
// answer, and offer again afterwards. Every media.answer / media.offer carries `tracks`:
// [{mid, publisher, kind}] telling which participant's media each receiving transceiver holds.
// Every connection is listed on window.__pg.pcs so tests can read pc.getStats().
//
// Recovery (docs/protocol.md, "Losing the media path"): on `media.lost` (the room's worker
// died), on connectionState "failed", or "disconnected" for DISCONNECTED_MS, the link shows
// "reconnecting media" (#media-status, next to the #conn banner) and offers again from a new
// RTCPeerConnection with `restart: true` (aiortc has no ICE restart; the hub places the room
// on a live worker and rebuilds the subscriptions). Retries back off and are bounded; the
// status clears once video arrives again.

import { t } from "./i18n.js";

window.__pg = window.__pg || { pcs: [], links: [] };
window.__pg.pcs = window.__pg.pcs || [];
window.__pg.links = window.__pg.links || [];

/** a connection "disconnected" this long is given up (Chrome says "failed" only after ~30 s) */
const DISCONNECTED_MS = 4000;
/** a new connection that brings no media this long is given up and replaced */
const RECOVER_MS = 10000;
/** with no video to receive, a connection this long connected counts as recovered */
const NOTHING_TO_RECEIVE_MS = 3000;
/** delays before the attempts of one recovery; after the last the link gives up */
const BACKOFF_MS = [0, 500, 1000, 2000, 4000, 8000, 8000];
/** after media.lost every member offers at once but for a random delay up to this */
const LOST_SPREAD_MS = 300;

/** links in trouble -> i18n key of their status; the page shows the worst */
const troubled = new Map();

function showMediaStatus() {
  let el = document.getElementById("media-status");
  const keys = [...troubled.values()];
  const key = keys.includes("media_reconnecting") ? "media_reconnecting" : keys[0] || null;
  if (!key) {
    if (el) el.hidden = true;
    return;
  }
  if (!el) {
    el = document.createElement("span");
    el.id = "media-status";
    el.className = "conn bad";
    el.setAttribute("role", "status");
    el.setAttribute("aria-live", "polite");
    const conn = document.getElementById("conn");
    if (conn) conn.after(el);
    else document.body.prepend(el);
  }
  el.dataset.i18n = key; // i18n.apply() translates it on a language switch
  el.textContent = t(key);
  el.hidden = false;
}

// localStorage "pg.debug" = "1" logs every SDP and state change to the console (tests do this)
const DEBUG = (() => {
  try {
    return localStorage.getItem("pg.debug") === "1";
  } catch {
    return false;
  }
})();
function debug(...args) {
  if (DEBUG) console.debug("media:", ...args);
}

export class MediaLink {
  /**
   * @param {import("./ws.js").Signal} signal
   * @param {string} session
   * @param {{iceServers: RTCIceServer[], stream?: MediaStream|null,
   *          onRemote?: (m: Map<string, {video?: MediaStreamTrack, audio?: MediaStreamTrack}>) => void,
   *          onState?: (s: string) => void}} opts
   */
  constructor(signal, session, opts) {
    this.signal = signal;
    this.session = session;
    this.iceServers = opts.iceServers || [];
    this.stream = opts.stream || null;
    this.onRemote = opts.onRemote || (() => {});
    this.onState = opts.onState || (() => {});
    this.tracks = new Map(); // mid -> {publisher, kind}
    this.pc = null;
    this.closed = false;
    this.needOffer = false;
    this.busy = Promise.resolve();
    this.videoTrack = null; // what replaceVideo() put in place of the camera (a screen share)
    // recovery: whether it runs, its attempt, its timers; restarts counts new connections
    this.recovering = false;
    this.attempt = 0;
    this.restarts = 0;
    this.restartOffer = false;
    this.timers = { retry: null, giveUp: null, disconnected: null, check: null };
    this.connectedAt = 0;
    this.offs = [
      signal.on("media.answer", (m) => m.session === this.session && this._serial(() => this._onAnswer(m))),
      signal.on("media.offer", (m) => m.session === this.session && this._serial(() => this._onOffer(m))),
      signal.on("media.state", (m) => m.session === this.session && this.onState(m.state)),
      signal.on("media.lost", (m) => m.session === this.session && this._lost("media.lost")),
    ];
  }

  _serial(fn) {
    this.busy = this.busy.then(fn).catch((err) => console.error("media:", err));
    return this.busy;
  }

  async start() {
    this._connect();
    await this._serial(() => this._offer());
  }

  /** A new RTCPeerConnection with this link's outgoing media (or a data channel). */
  _connect() {
    // iceServers always passed (an omitted list is not what the hub configured)
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    window.__pg.pcs.push(pc);
    if (!window.__pg.links.includes(this)) window.__pg.links.push(this);
    const tracks = this.stream ? this.stream.getTracks() : [];
    if (tracks.length) {
      for (let track of tracks) {
        const shared = this.videoTrack && this.videoTrack.readyState === "live" ? this.videoTrack : null;
        if (track.kind === "video" && shared) track = shared; // a new connection goes on sharing
        pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
      }
    } else {
      pc.createDataChannel("control");
    }
    // handlers ignore a connection this link has replaced
    pc.onicecandidate = (ev) => {
      if (pc !== this.pc) return;
      const msg = { type: "media.candidate", session: this.session };
      if (ev.candidate && ev.candidate.candidate) msg.candidate = ev.candidate.toJSON();
      this.signal.send(msg);
    };
    pc.ontrack = () => pc === this.pc && this._publishRemote();
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      debug("connection " + pc.connectionState);
      this.onState(pc.connectionState);
      this._watch(pc.connectionState);
    };
  }

  _dropPc(pc) {
    if (!pc) return;
    pc.close();
    window.__pg.pcs = window.__pg.pcs.filter((p) => p !== pc);
  }

  // ---- recovery ---------------------------------------------------------------------------

  _watch(state) {
    clearTimeout(this.timers.disconnected);
    this.timers.disconnected = null;
    if (state === "connected") {
      this.connectedAt = Date.now();
      if (this.recovering) this._checkFlowing();
    } else if (state === "disconnected") {
      // often a passing loss of packets: give it a moment before starting over
      this.timers.disconnected = setTimeout(() => this._lost("disconnected"), DISCONNECTED_MS);
    } else if (state === "failed") {
      this._lost("failed");
    }
  }

  /** The media path is lost (`media.lost` or the connection failed): start over. */
  _lost(reason) {
    if (this.closed) return;
    debug("media lost: " + reason);
    if (!this.recovering) {
      this.recovering = true;
      this.attempt = 0;
    }
    troubled.set(this, "media_reconnecting");
    showMediaStatus();
    this._clearTimers();
    if (this.attempt >= BACKOFF_MS.length) {
      // bounded: say so and stop (a reload, or a rejoin after the signal comes back, retries)
      console.warn("media: giving up after", this.attempt, "attempts");
      this.recovering = false;
      troubled.set(this, "media_failed");
      showMediaStatus();
      return;
    }
    // the hub saying the worker died means another can take the room now: no backoff, only a
    // spread of LOST_SPREAD_MS so a whole training does not offer in the same instant
    const delay = reason === "media.lost" ? Math.random() * LOST_SPREAD_MS : BACKOFF_MS[this.attempt];
    this.attempt += 1;
    this.timers.retry = setTimeout(() => this._restart(), delay);
  }

  _restart() {
    if (this.closed) return;
    this.restarts += 1;
    this._dropPc(this.pc);
    this.tracks = new Map();
    this.needOffer = false;
    this.restartOffer = true; // the hub closes the worker's old peer of this participant
    this._connect();
    this._publishRemote(); // the old tracks are gone
    this.timers.giveUp = setTimeout(() => this._lost("no media"), RECOVER_MS);
    this._serial(async () => {
      try {
        await this._offer();
      } catch (err) {
        // e.g. media_unavailable (no live worker yet) or the signal is down: try again later
        console.warn("media: offer after loss failed", err);
        this._lost("offer " + (err.code || err));
      }
    });
  }

  async _checkFlowing() {
    clearTimeout(this.timers.check);
    this.timers.check = null;
    const pc = this.pc;
    if (this.closed || !this.recovering || !pc || pc.connectionState !== "connected") return;
    let decoded = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") decoded += s.framesDecoded || 0;
    });
    const expectVideo = [...this.tracks.values()].some((x) => x.kind === "video");
    if (decoded > 0 || (!expectVideo && Date.now() - this.connectedAt >= NOTHING_TO_RECEIVE_MS)) {
      debug("media back after " + this.attempt + " attempt(s)");
      this.recovering = false;
      this.attempt = 0;
      this._clearTimers();
      troubled.delete(this);
      showMediaStatus();
      return;
    }
    if (pc === this.pc) this.timers.check = setTimeout(() => this._checkFlowing(), 250);
  }

  _clearTimers() {
    for (const key of Object.keys(this.timers)) {
      clearTimeout(this.timers[key]);
      this.timers[key] = null;
    }
  }

  async _offer() {
    const pc = this.pc;
    if (!pc || this.closed) return;
    if (pc.signalingState !== "stable") {
      this.needOffer = true;
      return;
    }
    this.needOffer = false;
    // The browser's own numbering goes out unchanged: the worker keeps the payload types and
    // header-extension ids of this first offer in all its re-offers (docs/media.md).
    await pc.setLocalDescription(await pc.createOffer());
    debug("local offer\n" + pc.localDescription.sdp);
    const fields = { session: this.session, sdp: pc.localDescription.sdp };
    if (this.restartOffer) fields.restart = true;
    await this.signal.request("media.offer", fields);
    if (pc === this.pc) this.restartOffer = false;
  }

  /** Start publishing a stream on an existing connection (a promoted training viewer). */
  async publish(stream) {
    this.stream = stream;
    for (const track of stream.getTracks()) {
      this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    }
    await this._serial(() => this._offer());
  }

  /** Replace the outgoing video track (screen sharing). */
  async replaceVideo(track) {
    this.videoTrack = track;
    for (const t of this.pc.getTransceivers()) {
      if (t.sender && t.sender.track && t.sender.track.kind === "video") {
        await t.sender.replaceTrack(track);
        return true;
      }
    }
    return false;
  }

  _setTracks(list) {
    this.tracks = new Map((list || []).map((t) => [t.mid, t]));
  }

  async _onAnswer(m) {
    debug("remote answer (state " + this.pc.signalingState + ") tracks " + JSON.stringify(m.tracks) + "\n" + m.sdp);
    this._setTracks(m.tracks);
    if (this.pc.signalingState !== "have-local-offer") return;
    await this.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
    this._publishRemote();
    if (this.needOffer) await this._offer();
  }

  async _onOffer(m) {
    const pc = this.pc;
    debug("remote offer (state " + pc.signalingState + ") tracks " + JSON.stringify(m.tracks) + "\n" + m.sdp);
    this._setTracks(m.tracks);
    if (pc.signalingState === "have-local-offer") {
      // the worker is impolite: roll back our offer, answer theirs, offer again after
      await pc.setLocalDescription({ type: "rollback" });
      this.needOffer = true;
    }
    await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    debug("local answer\n" + pc.localDescription.sdp);
    this.signal.send({ type: "media.answer", session: this.session, sdp: pc.localDescription.sdp });
    this._publishRemote();
    if (this.needOffer) await this._offer();
  }

  /** Which participant's tracks arrive where: publisher id -> {video, audio}. */
  remote() {
    const out = new Map();
    if (!this.pc) return out;
    for (const t of this.pc.getTransceivers()) {
      const info = t.mid != null ? this.tracks.get(t.mid) : null;
      const dir = t.currentDirection || t.direction;
      if (!info || !t.receiver.track || !(dir === "recvonly" || dir === "sendrecv")) continue;
      const entry = out.get(info.publisher) || {};
      entry[info.kind] = t.receiver.track;
      out.set(info.publisher, entry);
    }
    return out;
  }

  _publishRemote() {
    this.onRemote(this.remote());
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.offs) off();
    this._clearTimers();
    troubled.delete(this);
    showMediaStatus();
    if (this.pc) {
      this._dropPc(this.pc);
      window.__pg.links = window.__pg.links.filter((l) => l !== this);
    }
  }
}

/** Camera and microphone; falls back to audio only, then to nothing (watch-only). */
export async function localMedia(opts = {}) {
  const video = opts.rear ? { facingMode: { ideal: "environment" } } : true;
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (err) {
    console.warn("camera unavailable:", err);
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      return null;
    }
  }
}

/** Figures tests read: frames decoded and audio received over every connection of the page. */
window.__pg.stats = async function stats() {
  const out = { framesDecoded: 0, audioPackets: 0, audioEnergy: 0, framesSent: 0, pcs: 0, byPublisher: {} };
  for (const link of window.__pg.links) {
    const pc = link.pc;
    if (!pc || pc.connectionState === "closed") continue;
    out.pcs += 1;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video") out.framesSent += s.framesEncoded || 0;
      if (s.type !== "inbound-rtp") return;
      const who = s.mid != null && link.tracks.get(s.mid);
      const key = who ? who.publisher : "?";
      const mine = (out.byPublisher[key] = out.byPublisher[key] || { frames: 0, audioPackets: 0, audioEnergy: 0 });
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out.framesDecoded += s.framesDecoded || 0;
        mine.frames += s.framesDecoded || 0;
      }
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.audioPackets += s.packetsReceived || 0;
        out.audioEnergy += s.totalAudioEnergy || 0;
        mine.audioPackets += s.packetsReceived || 0;
        mine.audioEnergy += s.totalAudioEnergy || 0;
      }
    });
  }
  return out;
};
