// /duty: the week's leader on duty per unit a "to the leader on duty" visit may reach
// (GET /api/duty); a unit's leaders and administrators choose from the unit's own leaders
// (PUT /api/duty/{day}), everybody else (reception officers) reads it.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { $, api, h, say } from "../ui.js";

i18n.setup();

const state = { from: null, week: null };
window.__pg = window.__pg || {};
window.__pg.duty = state;

function monday(day) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  return d.toISOString().slice(0, 10);
}

function shift(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function today() {
  // the roster's days are days in China Standard Time
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

function dayLabel(day) {
  return `${t(`weekday_${new Date(`${day}T00:00:00Z`).getUTCDay()}`)} ${day.slice(5)}`;
}

async function load() {
  const msg = $("#msg");
  try {
    state.week = await api(`/api/duty?from=${state.from}&days=7`);
    msg.textContent = "";
  } catch (err) {
    state.week = null;
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
  render();
}

function cell(unit, day) {
  const on = unit.days[day];
  if (!unit.can_edit || !unit.leaders.length) {
    return h("td", { "data-day": day }, on ? on.name : h("span", { class: "muted" }, unit.leaders.length ? t("duty_nobody") : "—"));
  }
  const select = h(
    "select",
    { "aria-label": t("duty_for", { unit: unit.unit_name, day: dayLabel(day) }), "data-day": day },
    // there is no route to clear a day: "nobody" is offered only while nobody is set
    on ? null : h("option", { value: "" }, t("duty_nobody")),
    ...unit.leaders.map((l) => h("option", { value: l.id }, l.name)),
  );
  select.value = on ? String(on.account_id) : "";
  select.addEventListener("change", () => save(unit, day, select));
  return h("td", { "data-day": day }, select);
}

async function save(unit, day, select) {
  const msg = $("#msg");
  if (!select.value) return;
  try {
    await api(`/api/duty/${day}`, { method: "PUT", body: { unit_id: unit.unit_id, account_id: Number(select.value) } });
    const name = select.selectedOptions[0].textContent;
    // reload first: load() clears the message line, and the confirmation must stay on it
    await load();
    msg.className = "ok";
    msg.textContent = t("duty_saved", { day: dayLabel(day), unit: unit.unit_name, name });
    say(msg.textContent);
  } catch (err) {
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

function render() {
  $("#range").textContent = `${state.from} – ${shift(state.from, 6)}`;
  const week = state.week;
  if (!week) {
    $("#roster thead").replaceChildren();
    $("#roster tbody").replaceChildren();
    return;
  }
  $("#roster thead").replaceChildren(h("tr", {}, h("th", { scope: "col" }, t("duty_unit")), ...week.days.map((d) => h("th", { scope: "col", class: d === today() ? "today" : "" }, dayLabel(d)))));
  $("#roster tbody").replaceChildren(
    ...(week.units.length
      ? week.units.map((u) => h("tr", { "data-unit": u.unit_id }, h("th", { scope: "row" }, u.unit_name, u.leaders.length ? null : h("div", { class: "muted" }, t("duty_no_leaders"))), ...week.days.map((d) => cell(u, d))))
      : [h("tr", {}, h("td", { colspan: "8", class: "muted" }, t("no_data")))]),
  );
}

async function init() {
  try {
    const me = await api("/api/me");
    $("#me").textContent = me.name || "";
  } catch {
    location.href = "/login?next=/duty";
    return;
  }
  state.from = monday(today());
  $("#prev").addEventListener("click", () => {
    state.from = shift(state.from, -7);
    load();
  });
  $("#next").addEventListener("click", () => {
    state.from = shift(state.from, 7);
    load();
  });
  $("#this").addEventListener("click", () => {
    state.from = monday(today());
    load();
  });
  i18n.onChange(render);
  await load();
}

init();
