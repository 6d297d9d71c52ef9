// /items: the petition items in the official's scope, with filters and paging. State,
// channel, unit and the registration days are the API's filters; category, overdue and "due before" are applied here
// to the API's answer (the list carries each item's current deadline), over up to 500 items.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { $, api, h } from "../ui.js";

i18n.setup();

const PAGE = 20;
const STATES = ["registered", "transferred", "assigned", "received", "returned", "accepted", "part_concluded", "opinion_issued", "reported", "review_requested", "review_opinion", "rereview_requested", "rereview_opinion", "concluded", "diverted", "not_accepted"];
const CHANNELS = ["video", "visit", "letter", "online", "phone", "fax"];
const CATEGORIES = ["housing", "labour", "land", "welfare", "law", "other"];
const state = { page: 0, rows: [], more: false, units: new Map(), error: null, figure: null };
/** Opened from a report's figure (/items?figure=concluded&start=…): the records it counts. */
const FIGURE = new URLSearchParams(location.search).get("figure");
window.__pg = window.__pg || {};
window.__pg.items = state;

function label(prefix, key) {
  return key && i18n.has(`${prefix}${key}`) ? t(`${prefix}${key}`) : key || "";
}

function options(select, prefix, keys) {
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, t("any")), ...keys.map((k) => h("option", { value: k }, label(prefix, k))));
  select.value = chosen;
}

function fillFilters() {
  options($("#f-state"), "item_state_", STATES);
  options($("#f-channel"), "channel_", CHANNELS);
  options($("#f-category"), "cat_", CATEGORIES);
  const unit = $("#f-unit");
  const chosen = unit.value;
  unit.replaceChildren(h("option", { value: "" }, t("any")), ...[...state.units.values()].filter((u) => u.in_scope !== false).map((u) => h("option", { value: u.id }, u.name)));
  unit.value = chosen;
}

function localToday() {
  // deadlines are days in China Standard Time
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

async function load() {
  const f = $("#filters");
  const msg = $("#msg");
  const local = f.category.value || f.overdue.checked || f.due_before.value;
  const query = { state: f.state.value, channel: f.channel.value, unit_id: f.unit_id.value, from: f.from.value, until: f.until.value };
  try {
    if (FIGURE) {
      // the report's own list: the items as of the report's instant, not today's filters
      const found = await api(`/api/stats/records${location.search}`);
      state.figure = found;
      state.rows = found.records.slice(state.page * PAGE, (state.page + 1) * PAGE);
      state.more = found.records.length > (state.page + 1) * PAGE;
    } else if (local) {
      let found = await items.list({ ...query, limit: 500 });
      const today = localToday();
      if (f.category.value) found = found.filter((i) => i.category === f.category.value);
      if (f.overdue.checked) found = found.filter((i) => i.due && i.due.on < today);
      if (f.due_before.value) found = found.filter((i) => i.due && i.due.on < f.due_before.value);
      state.rows = found.slice(state.page * PAGE, (state.page + 1) * PAGE);
      state.more = found.length > (state.page + 1) * PAGE;
    } else {
      const found = await items.list({ ...query, limit: PAGE + 1, offset: state.page * PAGE });
      state.rows = found.slice(0, PAGE);
      state.more = found.length > PAGE;
    }
    msg.className = "muted";
    state.error = null;
  } catch (err) {
    state.rows = [];
    state.more = false;
    msg.className = "error";
    state.error = err;
  }
  render();
}

function render() {
  // said in the page's language at every render, so a language switch re-says it
  $("#msg").textContent = state.error ? `${t("load_failed")}: ${errorText(state.error)}` : state.rows.length ? "" : t("items_none");
  const fig = state.figure;
  $("#figure").hidden = !fig;
  $("#figure").textContent = fig
    ? t("figure_records", { n: fig.count, date: fig.as_of.slice(0, 10) }) + (fig.withheld ? t("figure_withheld", { n: fig.withheld }) : "")
    : "";
  $("#rows").replaceChildren(
    ...state.rows.map((i) =>
      h(
        "tr",
        { "data-item": i.id },
        h("td", {}, h("a", { href: `/items/${encodeURIComponent(i.lookup_code)}` }, i.lookup_code)),
        h("td", { "data-state": i.state }, label("item_state_", i.state)),
        h("td", {}, label("channel_", i.channel)),
        h("td", {}, label("cat_", i.category)),
        h("td", {}, (state.units.get(i.handling_unit_id || i.registering_unit_id) || {}).name || ""),
        h("td", { class: i.due && i.due.on < localToday() ? "error" : "" }, i.due ? `${label("due_", i.due.what)} ${i.due.on}${i.due.provisional ? t("provisional") : ""}` : ""),
        h("td", {}, i.request || ""),
      ),
    ),
  );
  $("#page-no").textContent = t("page_no", { n: state.page + 1 });
  $("#prev").disabled = state.page === 0;
  $("#next").disabled = !state.more;
}

async function init() {
  try {
    const me = await api("/api/me");
    $("#me").textContent = me.name || "";
  } catch {
    location.href = "/login?next=/items";
    return;
  }
  try {
    state.units = new Map((await items.units()).map((u) => [u.id, u]));
  } catch {
    state.units = new Map();
  }
  fillFilters();
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.page = 0;
    load();
  });
  $("#prev").addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    load();
  });
  $("#next").addEventListener("click", () => {
    state.page += 1;
    load();
  });
  i18n.onChange(() => {
    fillFilters();
    render();
  });
  await load();
}

init();
