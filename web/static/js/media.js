// One RTCPeerConnection per participant to the media worker (MEDIA.md, docs/media.md).
//
// The client sends the first offer (its camera and microphone, or only a data channel for
// watch-only roles); the worker answers and later re-offers when subscriptions change. The
// client is the polite side: a worker offer that collides with ours makes us roll back and
// answer, and offer again afterwards. Every media.answer / media.offer carries `tracks`:
// [{mid, publisher, kind}] telling which participant's media each receiving transceiver holds.
// Every connection is listed on window.__pg.pcs so tests can read pc.getStats().

window.__pg = window.__pg || { pcs: [], links: [] };

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
    this.offs = [
      signal.on("media.answer", (m) => m.session === this.session && this._serial(() => this._onAnswer(m))),
      signal.on("media.offer", (m) => m.session === this.session && this._serial(() => this._onOffer(m))),
      signal.on("media.state", (m) => m.session === this.session && this.onState(m.state)),
    ];
  }

  _serial(fn) {
    this.busy = this.busy.then(fn).catch((err) => console.error("media:", err));
    return this.busy;
  }

  async start() {
    // iceServers always passed (an omitted list is not what the hub configured)
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    window.__pg.pcs.push(pc);
    window.__pg.links.push(this);
    if (this.stream && this.stream.getTracks().length) {
      for (const track of this.stream.getTracks()) {
        pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
      }
    } else {
      pc.createDataChannel("control");
    }
    pc.onicecandidate = (ev) => {
      const msg = { type: "media.candidate", session: this.session };
      if (ev.candidate && ev.candidate.candidate) msg.candidate = ev.candidate.toJSON();
      this.signal.send(msg);
    };
    pc.ontrack = () => this._publishRemote();
    pc.onconnectionstatechange = () => {
      debug("connection " + pc.connectionState);
      this.onState(pc.connectionState);
    };
    await this._serial(() => this._offer());
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
    await this.signal.request("media.offer", { session: this.session, sdp: pc.localDescription.sdp });
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
    if (this.pc) {
      this.pc.close();
      window.__pg.pcs = window.__pg.pcs.filter((p) => p !== this.pc);
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
