// One RTCPeerConnection per participant to the media worker (MEDIA.md, docs/media.md).
//
// The client sends the first offer (its camera and microphone, or only a data channel for
// watch-only roles); the worker answers and later re-offers when subscriptions change. The
// client is the polite side: a worker offer that collides with ours makes us roll back and
// answer, and offer again afterwards. Every media.answer / media.offer carries `tracks`:
// [{mid, publisher, kind}] telling which participant's media each receiving transceiver holds.
// Every connection is listed on window.__pg.pcs so tests can read pc.getStats().

window.__pg = window.__pg || { pcs: [], links: [] };

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
    pc.onconnectionstatechange = () => this.onState(pc.connectionState);
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
    const offer = await pc.createOffer();
    await pc.setLocalDescription({ type: "offer", sdp: alignExtensions(offer.sdp) });
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
    this._setTracks(m.tracks);
    if (this.pc.signalingState !== "have-local-offer") return;
    await this.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
    this._publishRemote();
    if (this.needOffer) await this._offer();
  }

  async _onOffer(m) {
    const pc = this.pc;
    this._setTracks(m.tracks);
    if (pc.signalingState === "have-local-offer") {
      // the worker is impolite: roll back our offer, answer theirs, offer again after
      await pc.setLocalDescription({ type: "rollback" });
      this.needOffer = true;
    }
    await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
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

// aiortc numbers its header extensions mid=1, ssrc-audio-level=2, abs-send-time=3 in the
// offers it makes later; Chrome numbers them differently in its first offer, and a BUNDLE
// group cannot reassign an id ("RTP extension ID reassignment not supported"). So our offers
// use aiortc's ids and leave out the extensions aiortc does not speak.
const EXT_IDS = {
  "urn:ietf:params:rtp-hdrext:sdes:mid": 1,
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 2,
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 3,
};

// aiortc also renumbers payload types in its own offers (opus 96, VP8 97 + RTX 98, H264
// 99-102) without keeping what was negotiated, and its receivers keep the first numbers: so
// our offers use aiortc's numbers from the start and offer only the codecs it speaks.
const H264_PT = { "42001f": [99, 100], "42e01f": [101, 102] };

function mapCodecs(section) {
  const lines = section.split("\r\n");
  const rtpmap = new Map();
  const fmtp = new Map();
  for (const line of lines) {
    let m = /^a=rtpmap:(\d+) ([^/]+)\//.exec(line);
    if (m) rtpmap.set(m[1], m[2].toLowerCase());
    m = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (m) fmtp.set(m[1], m[2]);
  }
  const map = new Map(); // old pt -> new pt
  for (const [pt, name] of rtpmap) {
    const params = fmtp.get(pt) || "";
    if (name === "opus") map.set(pt, 96);
    else if (name === "vp8") map.set(pt, 97);
    else if (name === "h264" && /packetization-mode=1/.test(params)) {
      const profile = (/profile-level-id=([0-9a-f]{6})/i.exec(params) || [])[1];
      const pts = profile && H264_PT[profile.toLowerCase()];
      if (pts && ![...map.values()].includes(pts[0])) map.set(pt, pts[0]);
    }
  }
  for (const [pt, name] of rtpmap) {
    const apt = (/apt=(\d+)/.exec(fmtp.get(pt) || "") || [])[1];
    if (name === "rtx" && apt && map.has(apt)) map.set(pt, map.get(apt) + 1);
  }
  if (!map.size) return section;
  const out = [];
  for (const line of lines) {
    if (line.startsWith("m=")) {
      const parts = line.split(" ");
      const pts = parts.slice(3).filter((pt) => map.has(pt)).map((pt) => map.get(pt));
      out.push([...parts.slice(0, 3), ...pts].join(" "));
      continue;
    }
    const m = /^a=(rtpmap|fmtp|rtcp-fb):(\d+)(.*)$/.exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    if (!map.has(m[2])) continue;
    const rest = m[3].replace(/apt=(\d+)/, (_, apt) => `apt=${map.get(apt) ?? apt}`);
    out.push(`a=${m[1]}:${map.get(m[2])}${rest}`);
  }
  return out.join("\r\n");
}

export function alignExtensions(sdp) {
  const sections = sdp.split("\r\nm=");
  sdp = [sections[0], ...sections.slice(1).map((s) => mapCodecs("m=" + s).slice(2))].join("\r\nm=");
  const out = [];
  for (const line of sdp.split("\r\n")) {
    const m = /^a=extmap:(\d+)(\/\w+)? (\S+)(.*)$/.exec(line);
    if (!m) {
      out.push(line);
      continue;
    }
    const id = EXT_IDS[m[3]];
    if (id) out.push(`a=extmap:${id}${m[2] || ""} ${m[3]}${m[4]}`);
  }
  return out.join("\r\n");
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
