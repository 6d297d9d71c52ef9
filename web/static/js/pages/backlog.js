// /backlog: backlog cases (积案) in the official's scope or led by them (?mine), and one case
// (/backlog?case=ID): the five ones, per responsible unit the months missing, this month's state
// and the latest entry, a form for a monthly entry and the entries. Laid out for a phone first:
// leaders in charge (包案领导) read and write their cases there.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { $, api, fmtTime, h, say, view } from "../ui.js";

i18n.setup();

const state = { units: new Map(), leaders: new Map(), cases: [], current: null };
window.__pg = window.__pg || {};
window.__pg.backlog = state;

const unitName = (id) => (state.units.get(id) || {}).name || t("unit") + ` ${id}`;
const leaderName = (id) => state.leaders.get(id) || t("unknown_account", { id });
const label = (prefix, key) => (key && i18n.has(`${prefix}${key}`) ? t(`${prefix}${key}`) : key || "");

function thisMonth() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 7); // China
}

function missingOf(c) {
  return Object.entries(c.missing_months || {}).filter(([, months]) => months.length);
}

async function loadList() {
  const msg = $("#list-msg");
  try {
    state.cases = (await api(`/api/backlog${$("#mine").checked ? "?mine=true" : ""}`)).cases;
    msg.textContent = "";
  } catch (err) {
    state.cases = [];
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
  renderList();
}

function renderList() {
  if (!$("#list-msg").textContent || $("#list-msg").dataset.none) {
    $("#list-msg").textContent = state.cases.length ? "" : t("bl_none");
    $("#list-msg").dataset.none = state.cases.length ? "" : "1";
  }
  $("#cases").replaceChildren(
    ...state.cases.map((c) => {
      const missing = missingOf(c);
      return h(
        "li",
        { "data-case": c.id },
        h("h3", {}, h("a", { href: `/backlog?case=${c.id}` }, `${c.lookup_code}`), " ", h("span", { class: "badge" }, label("item_state_", c.state))),
        h("p", {}, c.request || ""),
        h("p", {}, `${t("bl_leader")}: ${leaderName(c.leader_account_id)}`),
        c.closed_at
          ? h("p", { class: "ok", "data-closed": c.closed_at.slice(0, 10) }, t("bl_closed_on", { date: fmtTime(c.closed_at) }))
          : h("p", { class: missing.length ? "missing" : "ok" }, missing.length ? t("bl_missing_n", { n: c.missing_count }) : t("bl_no_missing")),
      );
    }),
  );
}

async function loadCase(id) {
  try {
    state.current = await api(`/api/backlog/${id}`);
  } catch (err) {
    $("#list-msg").textContent = `${t("load_failed")}: ${errorText(err)}`;
    view("v-list");
    return;
  }
  renderCase();
}

function renderCase() {
  const c = state.current;
  if (!c) return;
  const code = $("#case-code");
  code.textContent = c.lookup_code;
  code.href = `/items/${encodeURIComponent(c.lookup_code)}`;
  $("#case-state").textContent = label("item_state_", c.state);
  const five = [
    ["bl_leader", leaderName(c.leader_account_id)],
    ["bl_team", c.team],
    ["bl_plan", c.resolution_plan],
    ["bl_stability", c.stability_plan],
    ["bl_ledger", c.ledger],
    ["bl_units", c.unit_ids.map(unitName).join("、")],
    ["bl_plan_due", c.plan_due_on || "—"],
  ];
  $("#five").replaceChildren(...five.flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]));
  renderClosing(c);
  const month = thisMonth();
  $("#units").replaceChildren(
    ...c.unit_ids.map((u) => {
      const mine = c.entries.filter((e) => e.unit_id === u);
      const latest = mine.reduce((a, e) => (!a || e.month > a.month ? e : a), null);
      const missing = (c.missing_months || {})[String(u)] || [];
      const written = mine.some((e) => e.month === month);
      return h(
        "li",
        { "data-unit": u },
        h("h3", {}, unitName(u)),
        h("p", { class: missing.length ? "missing" : "ok", "data-missing": missing.join(",") }, missing.length ? t("bl_missing", { months: missing.join("、") }) : t("bl_no_missing")),
        h("p", { class: written ? "ok" : "" }, t("bl_this_month", { month, status: written ? t("bl_written") : t("bl_not_written") })),
        latest ? h("p", { class: "muted" }, `${latest.month} · ${t("bl_latest", { text: latest.text })}`) : null,
      );
    }),
  );
  const select = $("#e-unit");
  const chosen = select.value;
  // a unit writes its own entry: offer the involved units the caller may write for
  select.replaceChildren(...c.unit_ids.filter((u) => state.units.has(u) && state.units.get(u).in_scope !== false).map((u) => h("option", { value: u }, unitName(u))));
  if (chosen) select.value = chosen;
  const first = Object.values(c.missing_months || {}).flat().sort()[0];
  if (!$("#e-month").value) $("#e-month").value = first || month;
  $("#entries").replaceChildren(
    ...[...c.entries].reverse().map((e) => h("li", { "data-entry": e.id }, h("strong", {}, `${e.month} · ${unitName(e.unit_id)}`), " · ", e.text, h("span", { class: "muted" }, ` (${fmtTime(e.written_at)})`))),
  );
}

/** 销号: offered when the item is concluded and resolved and the caller may close the case;
 * otherwise the page says why not (the server checks the same and refuses otherwise). */
function renderClosing(c) {
  const why = $("#close-why");
  const button = $("#close-case");
  let reason = "";
  if (c.closed_at) reason = t("bl_closed_by", { date: fmtTime(c.closed_at), name: c.closed_by_name || leaderName(c.closed_by) });
  else if (c.state !== "concluded") reason = t("bl_close_not_concluded", { state: label("item_state_", c.state) });
  else if (!c.resolved) reason = t("bl_close_not_resolved");
  else if (!c.may_close) reason = t("bl_close_not_allowed");
  why.textContent = reason || t("bl_close_ready");
  why.className = c.closed_at ? "ok" : "muted";
  why.dataset.closable = reason ? "" : "1";
  button.hidden = !!reason;
}

async function closeCase() {
  const msg = $("#close-msg");
  try {
    await api(`/api/backlog/${state.current.id}/close`, { method: "POST", body: {} });
    await loadCase(state.current.id);
    msg.className = "ok";
    msg.textContent = t("bl_close_done");
    say(msg.textContent);
  } catch (err) {
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

async function writeEntry(ev) {
  ev.preventDefault();
  const f = ev.target;
  const msg = $("#entry-msg");
  const unit = Number(f.unit_id.value);
  try {
    await api(`/api/backlog/${state.current.id}/progress`, { method: "POST", body: { unit_id: unit, month: f.month.value, text: f.text.value } });
    msg.className = "ok";
    msg.textContent = t("bl_entry_saved", { unit: unitName(unit), month: f.month.value });
    say(msg.textContent);
    f.text.value = "";
    f.month.value = "";
    window.dispatchEvent(new Event("pg:changed")); // the navigation's counts (nav.js)
    await loadCase(state.current.id);
  } catch (err) {
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

async function init() {
  try {
    const me = await api("/api/me");
    $("#me").textContent = me.name || "";
  } catch {
    location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    return;
  }
  const [units, leaders] = await Promise.all([api("/api/orgs").then((d) => d.units).catch(() => []), api("/api/leaders").then((d) => d.leaders).catch(() => [])]);
  state.units = new Map(units.map((u) => [u.id, u]));
  state.leaders = new Map(leaders.map((l) => [l.id, l.name]));
  $("#mine").addEventListener("change", loadList);
  $("#entry").addEventListener("submit", writeEntry);
  $("#close-case").addEventListener("click", closeCase);
  i18n.onChange(() => {
    renderList();
    renderCase();
  });
  const id = new URLSearchParams(location.search).get("case");
  if (id && /^\d+$/.test(id)) {
    view("v-case");
    await loadCase(id);
  } else {
    view("v-list");
    await loadList();
  }
}

init();
