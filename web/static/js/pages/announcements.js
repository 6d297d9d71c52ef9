// /announcements: compose (title, text, days shown), choose the target units from the org
// tree (default: the whole district, when the author may publish there — a leader's own unit
// usually has no terminals), preview as a kiosk shows it, publish (one announcement per chosen
// unit, none below another chosen one), and the list with withdraw.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { $, api, fmtTime, h, say } from "../ui.js";

i18n.setup();

const state = { units: new Map(), children: new Map(), chosen: new Set(), list: [] };
window.__pg = window.__pg || {};
window.__pg.announcements = state;

function tree() {
  state.children = new Map();
  const roots = [];
  for (const u of state.units.values()) {
    if (u.parent_id != null && state.units.has(u.parent_id)) {
      if (!state.children.has(u.parent_id)) state.children.set(u.parent_id, []);
      state.children.get(u.parent_id).push(u);
    } else roots.push(u);
  }
  return roots;
}

function ancestors(id) {
  const out = [];
  let u = state.units.get(id);
  while (u && u.parent_id != null && state.units.has(u.parent_id)) {
    out.push(u.parent_id);
    u = state.units.get(u.parent_id);
  }
  return out;
}

/** The chosen units without those below another chosen one (their terminals get it anyway). */
function targets() {
  return [...state.chosen].filter((id) => !ancestors(id).some((a) => state.chosen.has(a)));
}

function node(u) {
  const kids = state.children.get(u.id) || [];
  const box = h("input", { type: "checkbox", id: `u-${u.id}`, value: u.id, disabled: u.in_scope === false ? true : null, "data-unit": u.id });
  box.checked = state.chosen.has(u.id);
  box.addEventListener("change", () => {
    if (box.checked) state.chosen.add(u.id);
    else state.chosen.delete(u.id);
    reach();
  });
  return h("li", {}, h("label", { class: "check", for: `u-${u.id}` }, box, h("span", {}, u.name)), kids.length ? h("ul", {}, ...kids.map(node)) : null);
}

function renderTree() {
  $("#tree").replaceChildren(...tree().map(node));
  reach();
}

function reach() {
  const names = targets().map((id) => state.units.get(id).name);
  $("#reach").textContent = names.length ? t("ann_reach", { units: names.join("、") }) : t("ann_reach_none");
}

function preview() {
  const f = $("#compose");
  $("#pv-title").textContent = f.title.value;
  $("#pv-body").textContent = f.body.value;
}

async function publish(ev) {
  ev.preventDefault();
  const f = ev.target;
  const msg = $("#msg");
  const units = targets();
  if (!units.length) {
    msg.className = "error";
    msg.textContent = t("ann_reach_none");
    return;
  }
  try {
    for (const unit_id of units) {
      await api("/api/announcements", { method: "POST", body: { unit_id, title: f.title.value, body: f.body.value, expires_in_h: Number(f.days.value) * 24 } });
    }
    msg.className = "ok";
    msg.textContent = t("ann_published", { n: units.length });
    say(msg.textContent);
    f.title.value = "";
    f.body.value = "";
    preview();
    await loadList();
  } catch (err) {
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

function status(a) {
  if (a.withdrawn_at) return ["withdrawn", t("ann_withdrawn")];
  if (Date.parse(a.expires_at) <= Date.now()) return ["expired", t("ann_expired")];
  return ["active", t("ann_active")];
}

async function withdraw(a) {
  const msg = $("#list-msg");
  try {
    await api(`/api/announcements/${a.id}/withdraw`, { method: "POST" });
    msg.className = "ok";
    msg.textContent = `${t("ann_withdrawn")}: ${a.title}`;
    say(msg.textContent);
    await loadList();
  } catch (err) {
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

/** "shown on N of M terminals", the terminals' names and when, on demand */
function delivery(a) {
  const d = a.delivery;
  if (!d) return "";
  const count = t("ann_delivered", { n: d.shown.length, m: d.terminals });
  if (!d.shown.length) return count;
  return h(
    "details",
    {},
    h("summary", {}, count),
    h("ul", { class: "plain" }, ...d.shown.map((r) => h("li", { "data-terminal": r.terminal_id }, `${r.name}（${r.unit_name}）· ${fmtTime(r.at)}`))),
  );
}

function renderList() {
  $("#rows").replaceChildren(
    ...(state.list.length
      ? state.list.map((a) => {
          const [key, text] = status(a);
          return h(
            "tr",
            { "data-announcement": a.id, "data-unit": a.unit_id },
            h("td", {}, fmtTime(a.published_at)),
            h("td", {}, a.title),
            h("td", {}, a.unit_name),
            h("td", {}, a.author_name),
            h("td", {}, fmtTime(a.expires_at)),
            h("td", { "data-status": key }, text),
            h("td", { "data-shown": (a.delivery || { shown: [] }).shown.length }, delivery(a)),
            h("td", {}, a.can_withdraw && key === "active" ? h("button", { type: "button", class: "secondary", "aria-label": t("ann_withdraw_label", { title: a.title, unit: a.unit_name }), onclick: () => withdraw(a) }, t("ann_withdraw")) : ""),
          );
        })
      : [h("tr", {}, h("td", { colspan: "8", class: "muted" }, t("ann_none")))]),
  );
}

async function loadList() {
  try {
    state.list = (await api("/api/announcements")).announcements;
    $("#list-msg").textContent = "";
  } catch (err) {
    state.list = [];
    $("#list-msg").textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
  renderList();
}

async function init() {
  let me;
  try {
    me = await api("/api/me");
    $("#me").textContent = me.name || "";
  } catch {
    location.href = "/login?next=/announcements";
    return;
  }
  try {
    state.units = new Map((await api("/api/orgs")).units.filter((u) => u.active !== false).map((u) => [u.id, u]));
  } catch {
    state.units = new Map();
  }
  // default: the whole district when the author may publish there; else the author's unit
  const districts = [...state.units.values()].filter((u) => u.level === "district" && u.in_scope !== false);
  state.chosen = new Set(districts.length ? districts.map((u) => u.id) : state.units.has(me.unit_id) ? [me.unit_id] : []);
  renderTree();
  // publishing is for leaders and administrators (PUBLISH_ANNOUNCEMENT); others read the list
  if (!(me.roles || []).some((r) => r === "leader" || r === "admin")) {
    $("#compose").hidden = true;
    $("#c-h").after(h("p", { class: "muted", "data-i18n": "ann_read_only" }, t("ann_read_only")));
  }
  $("#compose").addEventListener("input", preview);
  $("#compose").addEventListener("submit", publish);
  i18n.onChange(() => {
    reach();
    renderList();
  });
  await loadList();
}

init();
