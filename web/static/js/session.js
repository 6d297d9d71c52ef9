// A participant in one session (conference, mediation, training, field, or a visit joined by
// invite): join, lobby, media, the call view, and rejoin after a reload or a network blip.
// The session id is kept in sessionStorage under `key`, so a reload comes back to it.

import { t } from "./i18n.js";
import { MediaLink, localMedia } from "./media.js";
import { CallView, say } from "./ui.js";

export class SessionClient {
  /**
   * @param {import("./ws.js").Signal} signal
   * @param {{key: string, grid: HTMLElement, list?: HTMLElement, recordingEl?: HTMLElement,
   *          rear?: boolean, on?: Record<string, (msg: any) => void>}} opts
   */
  constructor(signal, opts) {
    this.signal = signal;
    this.key = `pg.session.${opts.key}`;
    // a rear camera (the field unit) is shown as it is, not mirrored like a selfie, and
    // alone: the field unit receives nothing, so the others would be empty black tiles
    this.view = new CallView(opts.grid, { list: opts.list, recordingEl: opts.recordingEl, selfOnly: !!opts.rear, mirrorSelf: !opts.rear });
    this.rear = !!opts.rear;
    this.on = opts.on || {};
    this.session = null;
    this.me = null;
    this.snapshot = null;
    this.link = null;
    this.stream = null;
    this.lobby = new Map();
    const mine = (m) => m.session === this.session;
    const hook = (type, fn) =>
      signal.on(type, (m) => {
        if (!mine(m)) return;
        if (fn) fn(m);
        if (this.on[type]) this.on[type](m);
      });
    hook("participant.joined", (m) => this.view.upsert(m.participant));
    hook("participant.updated", (m) => this._updated(m.participant));
    hook("participant.left", (m) => this.view.drop(m.participant));
    hook("media.stats", (m) => this.view.setStats(m.participant, m.stats));
    hook("media.speaking", (m) => this.view.setSpeaking(m.participant, m.speaking));
    hook("recording", (m) => this.view.setRecording(m.active));
    hook("lobby.waiting", (m) => {
      this.lobby.set(m.participant.id, m.participant);
    });
    hook("lobby.left", (m) => this.lobby.delete(m.participant));
    hook("admission", (m) => this._admission(m));
    hook("session.ended", () => this._gone("session_ended"));
    // superseded: this person is in the session from another tab or device (the hub closes
    // this connection with 4001 and ws.js does not reconnect), not removed by anyone
    hook("session.removed", (m) => this._gone(m.reason === "superseded" ? "superseded" : "removed"));
    for (const type of ["hand.raised", "attendance", "chat.message", "participant.muted", "media.published", "session.state"]) {
      hook(type, null);
    }
    signal.on("ready", () => {
      const wanted = this.session || sessionStorage.getItem(this.key);
      if (wanted) this.join(wanted).catch((err) => this._fail(err));
    });
  }

  get role() {
    return this.snapshot && this.snapshot.participant ? this.snapshot.participant.role : null;
  }

  async join(sessionId) {
    this.session = sessionId;
    sessionStorage.setItem(this.key, sessionId);
    const snap = await this.signal.request("session.join", { session: sessionId });
    await this.enter(snap);
    return snap;
  }

  async enter(snap) {
    this.snapshot = snap;
    this.session = snap.session.id;
    this.me = snap.participant ? snap.participant.id : null;
    sessionStorage.setItem(this.key, this.session);
    this.lobby = new Map((snap.lobby || []).map((p) => [p.id, p]));
    this.view.setParticipants(snap.participants || []);
    this.view.setRecording(!!snap.recording);
    if (snap.participant && snap.participant.admission === "lobby") {
      if (this.on.lobby) this.on.lobby(snap);
      return;
    }
    if (this.on.entered) this.on.entered(snap);
    await this._startMedia();
  }

  async _startMedia() {
    if (this.link) this.link.close();
    const publish = this.role !== "viewer";
    if (publish && !this.stream) this.stream = await localMedia({ rear: this.rear });
    if (!publish && this.stream) {
      for (const tr of this.stream.getTracks()) tr.stop();
      this.stream = null;
    }
    if (!publish) this._endShare(); // a demoted speaker shares nothing any more
    this.view.setSelf(this.me, publish ? this.screen || this.stream : null);
    this.link = new MediaLink(this.signal, this.session, {
      iceServers: this.snapshot.ice_servers || [],
      stream: publish ? this.stream : null,
      onRemote: (m) => this.view.setRemote(m),
      onState: (s) => this.on.mediaState && this.on.mediaState(s),
    });
    await this.link.start();
    // a new connection (a rejoin after a network drop) goes on with the share, not the camera
    if (this.screen) await this.link.replaceVideo(this.screen.getVideoTracks()[0]);
  }

  _endShare() {
    if (!this.screen) return;
    for (const tr of this.screen.getTracks()) tr.stop();
    this.screen = null;
    if (this.on.sharing) this.on.sharing(false);
  }

  async _updated(p) {
    this.view.upsert(p);
    if (p.id !== this.me || !this.snapshot) return;
    const before = this.role;
    this.snapshot.participant = { ...this.snapshot.participant, ...p };
    if (before === "viewer" && p.role === "speaker") {
      // promoted: publish on the existing connection (the hub now allows it)
      this.stream = await localMedia();
      this.view.setSelf(this.me, this.stream);
      await this.link.publish(this.stream);
      say(t("you_speak"));
    } else if (before === "speaker" && p.role === "viewer") {
      await this._startMedia();
    }
  }

  async _admission(m) {
    if (m.state === "admitted") {
      const snap = { ...m, session: m.session_info || { id: m.session, state: "live" } };
      await this.enter(snap);
      say(t("admit"));
    } else if (m.state === "refused") {
      this._gone("refused");
    }
  }

  _gone(reason) {
    this.stop();
    sessionStorage.removeItem(this.key);
    say(t(reason));
    if (this.on.gone) this.on.gone(reason);
    this.session = null;
  }

  _fail(err) {
    console.warn("join failed", err);
    sessionStorage.removeItem(this.key);
    if (this.on.failed) this.on.failed(err);
  }

  stop() {
    if (this.link) this.link.close();
    this.link = null;
    if (this.stream) for (const tr of this.stream.getTracks()) tr.stop();
    this.stream = null;
    this._endShare(); // the capture ends with the session (the browser would go on capturing)
    this.view.setParticipants([]);
    this.view.setRemote(new Map());
    this.view.setSelf(null, null);
  }

  async shareScreen() {
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const track = display.getVideoTracks()[0];
    await this.link.replaceVideo(track);
    this.view.setSelf(this.me, display);
    // also ended by the browser: its "stop sharing" bar, or the shared tab or window closed
    track.onended = () => this.stopShare();
    this.screen = display;
    if (this.on.sharing) this.on.sharing(true);
  }

  async stopShare() {
    if (!this.screen) return;
    this._endShare();
    const cam = this.stream && this.stream.getVideoTracks()[0];
    if (cam) await this.link.replaceVideo(cam);
    this.view.setSelf(this.me, this.stream);
  }

  request(type, fields = {}) {
    return this.signal.request(type, { session: this.session, ...fields });
  }
}
