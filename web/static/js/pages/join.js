// Invite links (#invite=pgi_…): a lawyer, counsellor, another unit or a party joins the
// session the invite is bound to; waits in the lobby when the session has one.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { SessionClient } from "../session.js";
import { Signal } from "../ws.js";
import { $, bindConnection, h, say, view } from "../ui.js";

i18n.setup();
const KEY = "pg.join.token";
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("invite")) {
  sessionStorage.setItem(KEY, fragment.get("invite"));
  history.replaceState(null, "", location.pathname);
}
const token = sessionStorage.getItem(KEY);

if (!token) {
  view("v-invalid");
} else {
  const signal = new Signal({ token, storageKey: "join" });
  window.__pg.signal = signal;
  bindConnection(signal);
  let raised = false;
  const client = new SessionClient(signal, {
    key: "join",
    grid: $("#grid"),
    list: $("#people"),
    recordingEl: $("#rec"),
    on: {
      lobby: () => view("v-lobby"),
      "participant.updated": () => ($("#raise").hidden = client.role !== "viewer"),
      entered: (snap) => {
        $("#title").textContent = snap.session.title || "";
        $("#raise").hidden = snap.participant.role !== "viewer";
        // a training's invited viewers ask questions as the official viewers do
        $("#qa").hidden = snap.session.kind !== "training" && snap.participant.role !== "viewer";
        view("v-call");
      },
      gone: (reason) => {
        $("#gone-msg").textContent = t(reason);
        view("v-gone");
      },
      "chat.message": (m) => $("#questions").append(h("li", {}, h("strong", {}, m.name), m.text)),
      failed: () => view("v-invalid"),
    },
  });
  window.__pg.client = client;
  signal.on("fatal", () => view("v-invalid"));
  signal.on("ready", (hello) => {
    if (!client.session && hello.principal.session_id) {
      client.join(hello.principal.session_id).catch(() => view("v-invalid"));
    }
  });
  $("#leave").addEventListener("click", async () => {
    await client.request("session.leave").catch(() => {});
    client._gone("session_ended");
  });
  $("#raise").addEventListener("click", async () => {
    try {
      await client.request("hand.raise", { raised: !raised });
      raised = !raised;
      $("#raise").textContent = t(raised ? "lower_hand" : "raise_hand");
      $("#raise").setAttribute("aria-pressed", String(raised));
    } catch (err) {
      say(errorText(err));
    }
  });
  $("#ask").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = ev.target.text.value.trim();
    if (!text) return;
    await client.request("chat.send", { text }).catch((err) => say(errorText(err)));
    ev.target.reset();
  });
  signal.connect();
}
