// Conference and mediation room: create or join, lobby admit/refuse, mute, remove, screen
// sharing, invites, end with the outcome written to the session (and its item).

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { SessionClient } from "../session.js";
import { Signal } from "../ws.js";
import { $, api, bindConnection, h, say, view } from "../ui.js";

i18n.setup();
const signal = new Signal({ storageKey: "room" });
window.__pg.signal = signal;
bindConnection(signal);

function renderLobby() {
  const items = [...client.lobby.values()];
  $("#lobby-empty").hidden = items.length > 0;
  $("#lobby").replaceChildren(
    ...items.map((p) =>
      h(
        "li",
        { "data-participant": p.id },
        h("span", {}, `${p.name} · ${i18n.roleName(p.role)}`),
        h("button", { type: "button", class: "admit", "aria-label": `${t("admit")} ${p.name}`, onclick: () => decide("lobby.admit", p.id) }, t("admit")),
        h("button", { type: "button", class: "secondary refuse", "aria-label": `${t("refuse")} ${p.name}`, onclick: () => decide("lobby.refuse", p.id) }, t("refuse")),
      ),
    ),
  );
}

async function decide(type, pid) {
  try {
    await client.request(type, { participant: pid });
    client.lobby.delete(pid);
    renderLobby();
  } catch (err) {
    say(errorText(err));
  }
}

const muted = new Map();
const client = new SessionClient(signal, {
  key: "room",
  grid: $("#grid"),
  list: $("#people"),
  recordingEl: $("#rec"),
  on: {
    entered: (snap) => {
      $("#room-h").textContent = `${t(`kind_${snap.session.kind}`)} · ${snap.session.title || ""} (${snap.session.id.slice(0, 8)})`;
      view("v-room");
      renderLobby();
    },
    lobby: () => {
      $("#gone-msg").textContent = t("in_lobby");
      view("v-gone");
    },
    "lobby.waiting": renderLobby,
    "lobby.left": renderLobby,
    "participant.muted": (m) => {
      muted.set(`${m.participant}:${m.kind}`, m.muted);
      client.view.render();
    },
    gone: (reason) => {
      $("#gone-msg").textContent = t(reason);
      view("v-gone");
    },
    failed: (err) => {
      $("#start-msg").textContent = errorText(err);
      view("v-start");
    },
    // the button follows the share, however it ends (also kept across a language switch)
    sharing: (on) => {
      $("#share").dataset.i18n = on ? "stop_share" : "share_screen";
      $("#share").textContent = t($("#share").dataset.i18n);
    },
  },
});
window.__pg.client = client;
client.view.extra = (p) => {
  if (p.id === client.me) return [];
  const isMuted = muted.get(`${p.id}:audio`);
  return [
    h("button", { type: "button", class: "secondary", "aria-pressed": String(!!isMuted), onclick: () => client.request("participant.mute", { participant: p.id, kind: "audio", muted: !isMuted }).catch((e) => say(errorText(e))) }, t(isMuted ? "unmute_audio" : "mute_audio")),
    h("button", { type: "button", class: "danger", "aria-label": `${t("remove")} ${p.name}`, onclick: () => client.request("participant.remove", { participant: p.id }).catch((e) => say(errorText(e))) }, t("remove")),
  ];
};

$("#create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    const kind = f.kind.value;
    const created = await signal.request("session.create", { kind, title: f.title.value, lobby: kind === "mediation" || kind === "conference" });
    await client.join(created.session.id);
  } catch (err) {
    $("#start-msg").textContent = errorText(err);
  }
});
$("#joinf").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await client.join(ev.target.sid.value.trim()).catch((err) => ($("#start-msg").textContent = errorText(err)));
});
$("#end").addEventListener("click", async () => {
  await client.request("session.end", { outcome: $("#outcome").value }).catch((err) => say(errorText(err)));
});
$("#share").addEventListener("click", async () => {
  try {
    await (client.screen ? client.stopShare() : client.shareScreen());
  } catch (err) {
    say(errorText(err));
  }
});
$("#invite").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    const inv = await api(`/api/sessions/${client.session}/invites`, { method: "POST", body: { role: f.role.value, name: f.name.value } });
    const path = f.role.value === "field" ? inv.url.replace("/join#invite=", "/field#invite=") : inv.url;
    $("#inv-link").value = new URL(path, location.origin).href;
  } catch (err) {
    $("#inv-link").value = `${t("load_failed")}: ${errorText(err)}`;
  }
});
i18n.onChange(() => {
  renderLobby();
  client.view.render();
});
signal.connect();
