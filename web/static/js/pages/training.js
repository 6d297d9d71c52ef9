// Training: the trainer broadcasts camera or screen, sees attendance per unit and raised
// hands, promotes one viewer to speak and demotes; viewers watch, raise a hand, ask.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { SessionClient } from "../session.js";
import { Signal } from "../ws.js";
import { $, api, bindConnection, h, say, view } from "../ui.js";

i18n.setup();
const signal = new Signal({ storageKey: "training" });
window.__pg.signal = signal;
bindConnection(signal);
const hands = new Map();
let raised = false;

function isTrainer() {
  return client.role === "trainer";
}

function renderRole() {
  for (const el of document.querySelectorAll(".trainer-only")) el.hidden = !isTrainer();
  for (const el of document.querySelectorAll(".viewer-only")) el.hidden = isTrainer() || client.role === "speaker";
}

function renderHands() {
  $("#hands").replaceChildren(
    ...[...hands.values()].map((x) =>
      h(
        "li",
        { "data-participant": x.participant },
        h("span", {}, x.name),
        x.speaking
          ? h("button", { type: "button", class: "secondary", onclick: () => act("training.demote", x) }, t("demote"))
          : h("button", { type: "button", class: "promote", "aria-label": `${t("promote")} ${x.name}`, onclick: () => act("training.promote", x) }, t("promote")),
      ),
    ),
  );
}

async function act(type, x) {
  try {
    await client.request(type, { participant: x.participant });
    x.speaking = type === "training.promote";
    renderHands();
  } catch (err) {
    say(errorText(err));
  }
}

const client = new SessionClient(signal, {
  key: "training",
  grid: $("#grid"),
  list: $("#people"),
  recordingEl: $("#rec"),
  on: {
    entered: (snap) => {
      $("#room-h").textContent = `${snap.session.title || ""} (${snap.session.id.slice(0, 8).toUpperCase()})`;
      view("v-room");
      renderRole();
    },
    "participant.updated": () => renderRole(),
    "hand.raised": (m) => {
      if (m.raised) hands.set(m.participant, { participant: m.participant, name: m.name, speaking: false });
      else if (!(hands.get(m.participant) || {}).speaking) hands.delete(m.participant);
      renderHands();
      say(`${t("raise_hand")}: ${m.name}`);
    },
    attendance: (m) => {
      $("#attendance").textContent = `${t("attendance")}: ${m.total}`;
      $("#attendance").dataset.total = String(m.total);
    },
    "chat.message": (m) => $("#questions").append(h("li", {}, h("strong", {}, m.name), m.text)),
    gone: (reason) => {
      hands.clear();
      $("#gone-msg").textContent = t(reason);
      view("v-gone");
    },
    // the button follows the share, however it ends (also kept across a language switch)
    sharing: (on) => {
      $("#share").dataset.i18n = on ? "stop_share" : "share_screen";
      $("#share").textContent = t($("#share").dataset.i18n);
    },
    failed: (err) => {
      $("#start-msg").textContent = errorText(err);
      view("v-start");
    },
  },
});
window.__pg.client = client;

$("#create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const created = await signal.request("session.create", { kind: "training", title: ev.target.title.value });
    await client.join(created.session.id);
  } catch (err) {
    $("#start-msg").textContent = errorText(err);
  }
});
// Officials pick a training from the live and upcoming ones they may join; nobody types ids.
let open = [];

function renderOpen() {
  const list = $("#open-list");
  list.replaceChildren(
    ...(open.length
      ? open.map((x) =>
          h(
            "li",
            { "data-session": x.id },
            h("strong", {}, x.title || t("training_title")),
            h("span", {}, x.unit_name || ""),
            h("span", { class: "badge" }, t(x.state === "live" ? "training_live" : "training_upcoming")),
            h("span", { class: "muted" }, x.reference),
            h("button", { type: "button", class: "secondary", "aria-label": `${t("room_join")} ${x.title || ""}`, onclick: () => client.join(x.id).catch((err) => ($("#start-msg").textContent = errorText(err))) }, t("room_join")),
          ),
        )
      : [h("li", { class: "muted" }, t("no_trainings"))]),
  );
  list.dataset.loaded = "1";
}

async function loadOpen() {
  if (client.session) return;
  try {
    open = (await api("/api/trainings")).trainings;
    renderOpen();
  } catch (err) {
    $("#open-list").replaceChildren(h("li", { class: "error" }, errorText(err)));
  }
}
loadOpen();
setInterval(loadOpen, 10000);
$("#raise").addEventListener("click", async () => {
  raised = !raised;
  await client.request("hand.raise", { raised }).catch((err) => say(errorText(err)));
  $("#raise").textContent = t(raised ? "lower_hand" : "raise_hand");
  $("#raise").setAttribute("aria-pressed", String(raised));
});
$("#ask").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = ev.target.text.value.trim();
  if (!text) return;
  await client.request("chat.send", { text }).catch((err) => say(errorText(err)));
  ev.target.reset();
});
$("#end").addEventListener("click", () => client.request("session.end").catch((err) => say(errorText(err))));
$("#share").addEventListener("click", () => (client.screen ? client.stopShare() : client.shareScreen()).catch((err) => say(errorText(err))));
$("#invite").addEventListener("click", async () => {
  try {
    const inv = await api(`/api/sessions/${client.session}/invites`, { method: "POST", body: { role: "viewer", name: $("#inv-name").value.trim() || t("role_viewer") } });
    $("#inv-link").value = new URL(inv.url, location.origin).href;
  } catch (err) {
    $("#inv-link").value = errorText(err);
  }
});
i18n.onChange(() => {
  renderHands();
  renderOpen();
  client.view.render();
});
signal.connect();
