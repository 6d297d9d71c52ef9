// Community terminal: category → request → queue → call → receipt + rating.
// The device credential comes from #token= once and is kept in localStorage; the place in the
// queue and the call survive a reload (the hub rebinds the terminal's open visit on hello).

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { MediaLink, localMedia } from "../media.js";
import { SessionClient } from "../session.js";
import { Signal } from "../ws.js";
import { $, CallView, api, bindConnection, fmtTime, h, say, view } from "../ui.js";

i18n.setup();

const TOKEN_KEY = "pg.kiosk.token";
const RECEIPT_KEY = "pg.kiosk.receipt";
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  localStorage.setItem(TOKEN_KEY, fragment.get("token"));
  history.replaceState(null, "", location.pathname);
}
const token = localStorage.getItem(TOKEN_KEY);

const TRAINING_POLL_MS = 5000;
let training = null; // the SessionClient of a training being watched (wireTraining)
const state = { watching: null, trainings: [], session: null, category: null, link: null, stream: null, position: null, me: null, snapshot: null, announcements: [] };
const call = new CallView($("#call-grid"), { list: $("#people"), recordingEl: $("#rec") });
window.__pg = window.__pg || {};
window.__pg.kiosk = state;

if (!token) {
  view("v-notoken");
} else {
  const signal = new Signal({ token, storageKey: "kiosk" });
  window.__pg.signal = signal;
  bindConnection(signal, { refusedKey: "kiosk_not_activated" });
  wireTraining(signal);
  wire(signal);
  signal.connect();
}

function renderPosition() {
  const n = state.position;
  const el = $("#position");
  if (n == null) el.textContent = "";
  else el.textContent = n <= 1 ? t("kiosk_next") : t("kiosk_position", { n: n - 1 });
  el.dataset.position = n == null ? "" : String(n);
}

/** ids whose receipt the hub has (announcement.shown); asked again after a failure */
const receipted = new Set();

function showAnnouncements(list, signal) {
  const box = $("#announcements");
  const ul = $("#ann-list");
  const now = Date.now();
  const items = list.filter((a) => !a.expires_at || Date.parse(a.expires_at) > now);
  ul.replaceChildren(...items.map((a) => h("li", { "data-announcement": a.id }, h("h3", {}, a.title), h("p", {}, a.body))));
  box.hidden = items.length === 0;
  // on screen now: the announcements page counts this terminal among those that showed it
  for (const a of items) {
    if (receipted.has(a.id)) continue;
    receipted.add(a.id);
    signal.request("announcement.shown", { announcement: a.id }).catch(() => receipted.delete(a.id));
  }
}

function categoryText(key) {
  return key && i18n.has(`cat_${key}`) ? t(`cat_${key}`) : t("cat_other");
}

function renderReceipt(receipt) {
  $("#reference").textContent = receipt.reference || "";
  $("#ended-at").textContent = fmtTime(receipt.ended_at);
  $("#lookup-code").textContent = receipt.lookup_code || "";
  $("#code-pending").hidden = !!receipt.lookup_code;
  $("#r-category").textContent = receipt.category ? categoryText(receipt.category) : "";
  $("#r-category-row").hidden = !receipt.category;
  const due = receipt.due;
  const what = due && due.what && i18n.has(`due_${due.what}`) ? t(`due_${due.what}`) : t("due_on");
  $("#r-due").textContent = due ? t("kiosk_due", { what, date: due.on }) + (due.provisional ? t("provisional") : "") : "";
  $("#r-due-row").hidden = !due;
  const rating = receipt.rating || null;
  $("#rated").textContent = rating ? t("kiosk_rated_as", { label: t(`rate_${rating}`) }) : "";
  for (const b of document.querySelectorAll("[data-rating]")) {
    b.setAttribute("aria-pressed", String(rating === Number(b.dataset.rating)));
  }
}

function showReceipt(receipt) {
  sessionStorage.setItem(RECEIPT_KEY, JSON.stringify(receipt));
  renderReceipt(receipt);
  view("v-receipt");
}

/** What the receipt prints, from the terminal's own receipt route (the item's lookup code,
 * category and next deadline: the terminal may not read items themselves). */
async function receiptOf(sessionId) {
  try {
    return await api(`/api/sessions/${encodeURIComponent(sessionId)}/receipt`, { bearer: token });
  } catch (err) {
    console.warn("receipt not available", err);
    return {};
  }
}

// ---- watching a training: a viewer named after the community, with a raised hand ----------

function idle() {
  return !state.session && !state.watching && !$("#v-idle").hidden;
}

function renderTrainings() {
  const live = state.trainings.filter((x) => x.state === "live");
  $("#trainings").hidden = live.length === 0;
  $("#tr-list").replaceChildren(
    ...live.map((x) =>
      h(
        "li",
        { "data-session": x.id },
        h("span", {}, h("strong", {}, x.title || t("training_title")), " · ", x.unit_name || "", " · ", t("training_live")),
        h("button", { type: "button", class: "big", "aria-label": `${t("kiosk_watch")} ${x.title || ""}`, onclick: () => watch(x.id) }, t("kiosk_watch")),
      ),
    ),
  );
}

async function loadTrainings() {
  if (!token) return;
  try {
    state.trainings = (await api("/api/trainings", { bearer: token })).trainings;
  } catch {
    state.trainings = [];
  }
  renderTrainings();
}

async function watch(sessionId) {
  $("#tr-msg").textContent = "";
  await training.join(sessionId).catch((err) => {
    $("#tr-msg").textContent = errorText(err);
  });
}

function renderRaise(raised) {
  const b = $("#t-raise");
  b.dataset.raised = raised ? "1" : "";
  b.setAttribute("aria-pressed", String(raised));
  b.dataset.i18n = raised ? "lower_hand" : "raise_hand";
  b.textContent = t(b.dataset.i18n);
  $("#t-status").textContent = raised ? t("kiosk_hand_up") : training && training.role === "speaker" ? t("you_speak") : "";
}

function wireTraining(signal) {
  training = new SessionClient(signal, {
    key: "kiosk-training",
    grid: $("#t-grid"),
    on: {
      entered: (snap) => {
        state.watching = snap.session.id;
        $("#t-title").textContent = snap.session.title || t("training_title");
        view("v-training");
        renderRaise(false);
      },
      "participant.updated": (m) => {
        if (m.participant.id === training.me) renderRaise(false);
      },
      gone: () => {
        state.watching = null;
        view("v-idle");
        loadTrainings();
      },
      failed: (err) => {
        state.watching = null;
        $("#tr-msg").textContent = errorText(err);
      },
    },
  });
  window.__pg.training = training;
  $("#t-raise").addEventListener("click", async () => {
    const raised = !$("#t-raise").dataset.raised;
    try {
      await training.request("hand.raise", { raised });
      renderRaise(raised);
    } catch (err) {
      $("#t-status").textContent = errorText(err);
    }
  });
  $("#t-leave").addEventListener("click", async () => {
    await training.request("session.leave").catch(() => {});
    training._gone("kiosk_left_training");
  });
  setInterval(() => idle() && loadTrainings(), TRAINING_POLL_MS);
}

function stopMedia() {
  if (state.link) state.link.close();
  state.link = null;
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  state.stream = null;
}

async function startCall(signal, snapshot) {
  state.snapshot = snapshot;
  view("v-call");
  say(t("kiosk_in_call"));
  call.setParticipants(snapshot.participants || []);
  call.setRecording(!!snapshot.recording);
  if (state.link) state.link.close();
  if (!state.stream) state.stream = await localMedia();
  call.setSelf(state.me, state.stream);
  state.link = new MediaLink(signal, state.session, {
    iceServers: snapshot.ice_servers || [],
    stream: state.stream,
    onRemote: (m) => call.setRemote(m),
  });
  await state.link.start();
}

function enterSnapshot(signal, snapshot) {
  state.session = snapshot.session.id;
  state.me = snapshot.participant ? snapshot.participant.id : null;
  sessionStorage.removeItem(RECEIPT_KEY);
  if (snapshot.session.state === "waiting") {
    state.position = snapshot.position ?? state.position;
    renderPosition();
    view("v-queue");
  } else if (snapshot.session.state === "live") {
    startCall(signal, snapshot).catch((err) => console.error(err));
  }
}

function wire(signal) {
  signal.on("ready", (hello) => {
    state.announcements = hello.announcements || [];
    showAnnouncements(state.announcements, signal);
    if (hello.visit && hello.visit.session) {
      enterSnapshot(signal, hello.visit);
      return;
    }
    stopMedia();
    state.session = null;
    // a training being watched: its client joins again by itself (session.js)
    if (state.watching || sessionStorage.getItem(training.key)) return;
    const saved = sessionStorage.getItem(RECEIPT_KEY);
    if (saved) showReceipt(JSON.parse(saved));
    else view("v-idle");
    loadTrainings();
  });
  signal.on("fatal", () => view("v-notoken"));
  signal.on("announcement", (m) => {
    state.announcements = [...state.announcements.filter((a) => a.id !== m.announcement.id), m.announcement];
    showAnnouncements(state.announcements, signal);
  });
  signal.on("queue.position", (m) => {
    if (m.session !== state.session) return;
    state.position = m.position;
    renderPosition();
  });
  signal.on("session.state", (m) => {
    if (m.session !== state.session) return;
    if (m.state === "live") {
      signal
        .request("session.join", { session: state.session })
        .then((snap) => startCall(signal, snap))
        .catch((err) => console.error("join after accept failed", err));
    } else if (m.state === "cancelled") {
      stopMedia();
      view("v-idle");
    }
  });
  signal.on("participant.joined", (m) => m.session === state.session && call.upsert(m.participant));
  signal.on("participant.updated", (m) => m.session === state.session && call.upsert(m.participant));
  signal.on("participant.left", (m) => m.session === state.session && call.drop(m.participant));
  signal.on("recording", (m) => m.session === state.session && call.setRecording(m.active));
  signal.on("media.speaking", (m) => m.session === state.session && call.setSpeaking(m.participant, m.speaking));
  signal.on("session.ended", async (m) => {
    if (m.session !== state.session) return;
    stopMedia();
    const own = await receiptOf(m.session);
    const receipt = { ...(m.receipt || {}), ...Object.fromEntries(Object.entries(own).filter(([, v]) => v != null)) };
    showReceipt(receipt);
    say(t("session_ended"));
  });

  for (const b of document.querySelectorAll("[data-category]")) {
    b.addEventListener("click", () => {
      state.category = b.dataset.category;
      $("#confirm-h").textContent = b.textContent;
      view("v-confirm");
    });
  }
  $("#back").addEventListener("click", () => {
    view("v-idle");
    loadTrainings();
  });
  $("#request").addEventListener("click", async () => {
    $("#request").disabled = true;
    try {
      const snap = await signal.request("visit.request", { category: state.category || "other" });
      enterSnapshot(signal, snap);
    } catch (err) {
      say(errorText(err));
    } finally {
      $("#request").disabled = false;
    }
  });
  $("#cancel").addEventListener("click", async () => {
    if (!state.session) return;
    await signal.request("visit.cancel", { session: state.session }).catch(() => {});
    state.session = null;
    view("v-idle");
  });
  $("#end").addEventListener("click", async () => {
    if (!state.session) return;
    await signal.request("session.end", { session: state.session }).catch((err) => say(errorText(err)));
  });
  for (const b of document.querySelectorAll("[data-rating]")) {
    b.addEventListener("click", async () => {
      const receipt = JSON.parse(sessionStorage.getItem(RECEIPT_KEY) || "{}");
      const rating = Number(b.dataset.rating);
      try {
        await signal.request("visit.rate", { session: receipt.session, rating });
        receipt.rating = rating;
        showReceipt(receipt);
        b.focus();
        say(t("kiosk_rated_as", { label: t(`rate_${rating}`) }));
      } catch (err) {
        $("#rated").textContent = errorText(err);
      }
    });
  }
  $("#print").addEventListener("click", () => window.print());
  $("#done").addEventListener("click", () => {
    sessionStorage.removeItem(RECEIPT_KEY);
    view("v-idle");
    loadTrainings();
  });
  i18n.onChange(() => {
    renderPosition();
    renderTrainings();
    if (state.watching) renderRaise(!!$("#t-raise").dataset.raised);
    const saved = sessionStorage.getItem(RECEIPT_KEY);
    if (saved) renderReceipt(JSON.parse(saved));
    call.render();
  });
}
