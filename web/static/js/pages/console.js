// Official console: live queue, accept, call view with quality, item form, invites, end;
// my items with deadlines; session history with recordings. A reload mid-call rejoins (the
// session id is kept in sessionStorage; the hub rebinds the participant on session.join).

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { MediaLink, localMedia } from "../media.js";
import { Signal } from "../ws.js";
import { $, CallView, api, bindConnection, fmtTime, h, say } from "../ui.js";

i18n.setup();

const SESSION_KEY = "pg.console.session";
const state = { itemCode: null, me: null, session: null, pid: null, link: null, stream: null, queue: [], snapshot: null };
const call = new CallView($("#grid"), { list: $("#people"), recordingEl: $("#rec") });
window.__pg = window.__pg || {};
window.__pg.console = state;

const signal = new Signal({ storageKey: "console" });
window.__pg.signal = signal;
bindConnection(signal);

async function init() {
  try {
    state.me = await api("/api/me");
  } catch {
    location.href = "/login?next=/console";
    return;
  }
  $("#me").textContent = state.me.name || "";
  wire();
  signal.connect();
  loadHistory();
  loadItems();
  loadUnits();
}

// The unit complained about; an accusation must name it (Art. 30: it is never sent there).
async function loadUnits() {
  const select = $("#i-subject");
  const type = $("#i-type");
  const need = () => { select.required = type.value === "accusation"; };
  type.addEventListener("change", need);
  need();
  try {
    const { units } = await api("/api/orgs");
    select.append(...units.filter((u) => u.active).map((u) => h("option", { value: String(u.id) }, u.name)));
  } catch {
    // the list stays empty: complaints register without it, accusations are refused clearly
  }
}

function renderQueue() {
  const ul = $("#queue");
  $("#queue-empty").hidden = state.queue.length > 0;
  ul.replaceChildren(
    ...state.queue.map((v) =>
      h(
        "li",
        { "data-session": v.session },
        h("strong", {}, `#${v.position}`),
        h("span", {}, v.unit_name),
        h("span", { class: "badge" }, categoryName(v.category)),
        v.to_leader ? h("span", { class: "badge soon" }, "值班领导") : null,
        h("span", { class: "muted" }, `${t("waiting_since")} ${fmtTime(v.waiting_since)}`),
        h("button", { type: "button", class: "accept", onclick: () => accept(v.session), "aria-label": `${t("accept")} ${v.unit_name} #${v.position}` }, t("accept")),
      ),
    ),
  );
}

function categoryName(c) {
  const key = `cat_${c}`;
  const s = t(key);
  return s === key ? c || "" : s;
}

async function accept(sessionId) {
  const msg = $("#queue-msg");
  msg.textContent = "";
  try {
    const snap = await signal.request("visit.accept", { session: sessionId });
    await enterCall(snap);
  } catch (err) {
    // e.g. another officer was quicker: said on the page, not only to screen readers
    msg.textContent = errorText(err);
    msg.dataset.code = err.code || "";
  }
}

async function enterCall(snap) {
  state.snapshot = snap;
  state.session = snap.session.id;
  state.pid = snap.participant && snap.participant.id;
  sessionStorage.setItem(SESSION_KEY, state.session);
  $("#call").hidden = false;
  $("#call-cat").textContent = categoryName(snap.session.category);
  state.itemCode = null;
  showLinked(snap.session.item_id);
  $("#inv-link").value = "";
  call.setParticipants(snap.participants || []);
  call.setRecording(!!snap.recording);
  if (state.link) state.link.close();
  if (!state.stream) state.stream = await localMedia();
  call.setSelf(state.pid, state.stream);
  state.link = new MediaLink(signal, state.session, {
    iceServers: snap.ice_servers || [],
    stream: state.stream,
    onRemote: (m) => call.setRemote(m),
  });
  say(t("kiosk_in_call"));
  loadHistory(); // the visit just taken is live now, not waiting
  $("#call-h").focus && $("#end").focus();
  await state.link.start();
}

function leaveCall() {
  if (state.link) state.link.close();
  state.link = null;
  if (state.stream) for (const tr of state.stream.getTracks()) tr.stop();
  state.stream = null;
  state.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  $("#call").hidden = true;
  call.setParticipants([]);
  call.setRemote(new Map());
  loadHistory();
}

function wire() {
  signal.on("ready", async (hello) => {
    try {
      const q = await signal.request("queue.watch");
      state.queue = q.visits || [];
      renderQueue();
    } catch (err) {
      $("#queue-empty").textContent = errorText(err);
    }
    const wanted = sessionStorage.getItem(SESSION_KEY);
    if (!wanted) return;
    const resumed = (hello.resumed || []).find((s) => s.session && s.session.id === wanted);
    try {
      const snap = resumed || (await signal.request("session.join", { session: wanted }));
      if (snap.session.state === "live") await enterCall(snap);
      else leaveCall();
    } catch (err) {
      console.warn("rejoin failed", err);
      leaveCall();
    }
  });
  signal.on("queue.update", () => {
    signal.request("queue.watch").then((q) => {
      state.queue = q.visits || [];
      renderQueue();
    });
    loadHistory(); // a visit that left the queue went live (or was cancelled)
  });
  signal.on("participant.joined", (m) => m.session === state.session && call.upsert(m.participant));
  signal.on("participant.updated", (m) => m.session === state.session && call.upsert(m.participant));
  signal.on("participant.left", (m) => m.session === state.session && call.drop(m.participant));
  signal.on("media.stats", (m) => m.session === state.session && call.setStats(m.participant, m.stats));
  signal.on("media.speaking", (m) => m.session === state.session && call.setSpeaking(m.participant, m.speaking));
  signal.on("recording", (m) => m.session === state.session && call.setRecording(m.active));
  signal.on("session.item", (m) => {
    // the event names the item by its internal id; people know it by its lookup code
    if (m.session === state.session) showLinked(m.item_id || m.item);
  });
  signal.on("session.ended", (m) => {
    if (m.session !== state.session) return;
    leaveCall();
    say(t("session_ended"));
  });
  signal.on("session.state", (m) => {
    if (m.session === state.session && (m.state === "cancelled" || m.state === "ended")) leaveCall();
    else if (document.querySelector(`#history tr[data-session="${m.session}"]`)) loadHistory();
  });

  $("#end").addEventListener("click", async () => {
    if (!state.session) return;
    await signal.request("session.end", { session: state.session }).catch((err) => say(errorText(err)));
  });
  $("#logout").addEventListener("click", async () => {
    await api("/api/logout", { method: "POST" }).catch(() => {});
    sessionStorage.clear();
    location.href = "/login";
  });
  $("#invite").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const inv = await api(`/api/sessions/${state.session}/invites`, {
        method: "POST",
        body: { role: f.role.value, name: f.name.value },
      });
      $("#inv-link").value = new URL(inv.url, location.origin).href;
      $("#inv-link").select();
      say(t("invite_link"));
    } catch (err) {
      $("#inv-link").value = `${t("load_failed")}: ${errorText(err)}`;
    }
  });
  $("#item-new").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const msg = $("#item-msg");
    try {
      const item = await items.register({
        type: f.type.value,
        subject_unit_id: f.subject.value ? Number(f.subject.value) : null,
        channel: "video",
        request: f.request.value,
        facts: f.facts.value,
        category: state.snapshot && state.snapshot.session.category,
        session_id: state.session,
        petitioners: f.name.value ? [{ name: f.name.value, phone: f.phone.value || null }] : [],
      });
      state.itemCode = items.codeOf(item);
      await signal.request("session.link_item", { session: state.session, item_id: item.id });
      msg.className = "ok";
      msg.textContent = `${t("kiosk_lookup_code")}: ${items.codeOf(item)}`;
      msg.dataset.lookupCode = items.codeOf(item);
      f.reset();
      loadItems();
    } catch (err) {
      msg.className = "error";
      msg.textContent = err.status === 404 || err.status === 405 ? t("unavailable") : `${t("load_failed")}: ${errorText(err)}`;
    }
  });
  $("#item-link").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = $("#item-msg");
    try {
      const item = await items.byCode(ev.target.code.value);
      state.itemCode = items.codeOf(item);
      await signal.request("session.link_item", { session: state.session, item_id: item.id });
      msg.className = "ok";
      msg.textContent = `${t("linked")}: ${items.codeOf(item)}`;
    } catch (err) {
      msg.className = "error";
      msg.textContent = err.unavailable ? t("unavailable") : `${t("load_failed")}: ${errorText(err)}`;
    }
  });
  i18n.onChange(() => {
    renderQueue();
    call.render();
    loadHistory();
    loadItems();
  });
}

async function loadHistory() {
  const body = $("#history");
  try {
    const data = await api("/api/sessions?limit=20");
    body.replaceChildren(
      ...data.sessions.map((s) =>
        h(
          "tr",
          { "data-session": s.id },
          h("td", {}, fmtTime(s.created_at)),
          h("td", {}, t(`kind_${s.kind}`)),
          h("td", {}, categoryName(s.category)),
          h("td", { "data-state": s.state }, i18n.has(`state_${s.state}`) ? t(`state_${s.state}`) : s.state),
          h("td", {}, s.rating ? t(`rate_${s.rating}`) : ""),
          h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => showDetail(s.id), "aria-label": `${t("details")} ${s.id.slice(0, 8)}` }, t("details"))),
        ),
      ),
    );
  } catch (err) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: "6", class: "error" }, `${t("load_failed")}: ${errorText(err)}`)));
  }
}

async function showDetail(id) {
  const box = $("#detail");
  try {
    const s = await api(`/api/sessions/${id}`);
    // the session names its item by internal id: show it by its lookup code, linked
    const item = s.item_id ? await items.item(s.item_id).catch(() => null) : null;
    box.replaceChildren(
      h("h3", {}, `${t(`kind_${s.kind}`)} ${s.id.slice(0, 8).toUpperCase()}`),
      item ? h("p", { "data-item": item.id }, h("a", { href: `/items/${encodeURIComponent(items.codeOf(item))}` }, `${t("linked")}: ${items.codeOf(item)}`)) : null,
      h("ul", {}, ...s.participants.map((p) => h("li", {}, `${p.name} · ${i18n.roleName(p.role)} · ${fmtTime(p.joined_at)} – ${fmtTime(p.left_at)}`))),
      h("h4", {}, t("recordings")),
      s.recordings.length
        ? h("ul", { class: "recordings" }, ...s.recordings.map((r) => h("li", {}, h("a", { href: `/library#recording=${r.id}` }, `${t("play")} #${r.id}`), ` ${r.codec} · ${Math.round((r.bytes || 0) / 1024)} KiB · sha256 ${String(r.sha256 || "").slice(0, 12)}`)))
        : h("p", { class: "muted" }, t("no_recordings")),
    );
  } catch (err) {
    box.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

const URGENCY = ["overdue", "within3", "within7", "later"];

/** The units of my own subtree (what waits for my unit's acknowledgement is sent to these). */
async function ownUnits() {
  const units = await items.units().catch(() => []);
  const parent = new Map(units.map((u) => [u.id, u.parent_id]));
  const mine = (id) => {
    for (let u = id; u != null; u = parent.get(u)) if (u === state.me.unit_id) return true;
    return false;
  };
  return new Set(units.filter((u) => mine(u.id)).map((u) => u.id));
}

/** Items waiting for my units' acknowledgement (签收), and items whose petitioner may still ask
 * for a review or re-review (the window is the petitioner's, so the due lists leave it out). */
async function waiting() {
  const [own, sent, windows] = await Promise.all([
    ownUnits(),
    items.list({ state: "transferred,assigned", limit: 100 }).catch(() => []),
    items.list({ state: "opinion_issued,review_opinion,rereview_opinion", sort: "due", order: "asc", limit: 100 }).catch(() => []),
  ]);
  return [
    ["to_ack", sent.filter((i) => own.has(i.handling_unit_id))],
    ["windows", windows.filter((i) => i.due && /review_request$/.test(i.due.what))],
  ];
}

function waitingSection([key, list]) {
  return h(
    "section",
    { class: "urgency", "data-waiting": key, "aria-labelledby": `wait-${key}` },
    h("h3", { id: `wait-${key}` }, `${t(`mywork_${key}`)} (${list.length})`),
    list.length
      ? h(
          "ul",
          { class: "plain" },
          ...list.map((i) =>
            h(
              "li",
              { "data-item": i.id },
              h("a", { href: `/items/${encodeURIComponent(i.lookup_code)}` }, i.lookup_code),
              h("span", { class: "badge" }, i18n.has(`item_state_${i.state}`) ? t(`item_state_${i.state}`) : ""),
              i.due ? h("span", {}, `${i18n.has(`due_${i.due.what}`) ? t(`due_${i.due.what}`) : t("due_on")} ${i.due.on}`) : null,
            ),
          ),
        )
      : h("p", { class: "muted" }, t("no_data")),
  );
}

async function loadItems() {
  const box = $("#items");
  try {
    const [due, more] = await Promise.all([items.mine(), waiting()]);
    const groups = URGENCY.map((u) => [u, due.filter((d) => items.urgency(d) === u)]);
    box.replaceChildren(
      ...(due.length
        ? groups.map(([u, list]) =>
            h(
              "section",
              { class: "urgency", "data-urgency": u, "aria-labelledby": `urg-${u}` },
              h("h3", { id: `urg-${u}` }, `${t(`urgency_${u}`)} (${list.length})`),
              list.length
                ? h(
                    "ul",
                    { class: "plain" },
                    ...list.map((d) =>
                      h(
                        "li",
                        { "data-item": d.item_id },
                        h("a", { href: `/items/${encodeURIComponent(d.lookup_code)}` }, d.lookup_code),
                        h("span", { class: `badge ${u === "overdue" ? "overdue" : u === "later" ? "" : "soon"}` }, i18n.has(`item_state_${d.state}`) ? t(`item_state_${d.state}`) : ""),
                        h("span", {}, `${d.due_what && i18n.has(`due_${d.due_what}`) ? t(`due_${d.due_what}`) : t("due_on")} ${d.due_on}${d.due_provisional ? t("provisional") : ""}`),
                      ),
                    ),
                  )
                : h("p", { class: "muted" }, t("no_data")),
            ),
          )
        : [h("p", { class: "muted" }, t("no_data"))]),
      ...more.map(waitingSection),
    );
  } catch (err) {
    box.replaceChildren(h("p", { class: "muted", "data-unavailable": "" }, err.unavailable ? t("unavailable") : `${t("load_failed")}: ${errorText(err)}`));
  }
}

/** Say which item the call is linked to by its lookup code (events name it by internal id). */
async function showLinked(itemId) {
  const el = $("#item-linked");
  if (!itemId) {
    el.textContent = "";
    return;
  }
  if (!state.itemCode) {
    try {
      state.itemCode = items.codeOf(await items.item(itemId));
    } catch {
      state.itemCode = null;
    }
  }
  el.replaceChildren(state.itemCode ? h("a", { href: `/items/${encodeURIComponent(state.itemCode)}`, target: "_blank", rel: "noopener" }, `${t("linked")}: ${state.itemCode}`) : t("linked"));
}

init();
