// Field unit (手持单兵), phone layout: join with the code (an invite token, #invite= in the
// link or typed) and publish the rear camera; receives nothing (the hub never subscribes it).

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { SessionClient } from "../session.js";
import { Signal } from "../ws.js";
import { $, bindConnection, view } from "../ui.js";

i18n.setup();
const KEY = "pg.field.token";
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("invite")) {
  sessionStorage.setItem(KEY, fragment.get("invite"));
  history.replaceState(null, "", location.pathname);
}

function start(token) {
  const signal = new Signal({ token, storageKey: "field" });
  window.__pg.signal = signal;
  $("#conn").hidden = false;
  bindConnection(signal);
  const client = new SessionClient(signal, {
    key: "field",
    rear: true,
    grid: $("#grid"),
    list: $("#people"),
    recordingEl: $("#rec"),
    on: {
      entered: () => view("v-live"),
      gone: (reason) => {
        $("#gone-msg").textContent = t(reason);
        view("v-gone");
      },
      failed: (err) => ($("#msg").textContent = errorText(err)),
    },
  });
  window.__pg.client = client;
  signal.on("fatal", (err) => {
    sessionStorage.removeItem(KEY);
    $("#msg").textContent = `${t("join_invalid")} (${errorText(err)})`;
    view("v-start");
  });
  signal.on("ready", (hello) => {
    if (!client.session && hello.principal.session_id) client.join(hello.principal.session_id).catch(() => {});
  });
  $("#stop").addEventListener("click", async () => {
    await client.request("session.leave").catch(() => {});
    client._gone("session_ended");
  });
  signal.connect();
}

$("#codef").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = ev.target.code.value.trim();
  sessionStorage.setItem(KEY, token);
  start(token);
});
if (sessionStorage.getItem(KEY)) start(sessionStorage.getItem(KEY));
