// /items: the petition items in the official's scope, with filters, order and paging, all the
// API's (GET /api/items); the same query exports the list as CSV (GET /api/items.csv).

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { $, api, h } from "../ui.js";

i18n.setup();

const PAGE = 20;
const STATES = ["registered", "transferred", "assigned", "received", "returned", "accepted", "part_concluded", "opinion_issued", "reported", "review_requested", "review_opinion", "rereview_requested", "rereview_opinion", "concluded", "diverted", "not_accepted"];
const CHANNELS = ["video", "visit", "letter", "online", "phone", "fax"];
const CATEGORIES = ["housing", "labour", "land", "welfare", "law", "other"];
const SORTS = ["received", "due", "state"];
const ORDERS = ["desc", "asc"];
const state = { page: 0, rows: [], more: false, units: new Map(), handlers: [], error: null, figure: null };
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
  const handler = $("#f-handler");
  const who = handler.value;
  handler.replaceChildren(
    h("option", { value: "" }, t("any")),
    h("option", { value: "me" }, t("handler_me")),
    ...state.handlers.map((p) => h("option", { value: p.id }, `${p.name} · ${p.unit_name}`)),
  );
  handler.value = who;
  const sort = $("#f-sort");
  const by = sort.value || "received";
  sort.replaceChildren(...SORTS.map((k) => h("option", { value: k }, t(`sort_${k}`))));
  sort.value = by;
  const order = $("#f-order");
  const way = order.value || "desc";
  order.replaceChildren(...ORDERS.map((k) => h("option", { value: k }, t(`order_${k}`))));
  order.value = way;
}

function localToday() {
  // deadlines are days in China Standard Time
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

/** The API's query for the filters as they are set (the list's and the CSV's). */
function query() {
  const f = $("#filters");
  return {
    state: f.state.value,
    channel: f.channel.value,
    category: f.category.value,
    unit_id: f.unit_id.value,
    handler: f.handler.value,
    from: f.from.value,
    until: f.until.value,
    due_before: f.due_before.value,
    overdue: f.overdue.checked ? "true" : "",
    sort: f.sort.value,
    order: f.order.value,
  };
}

async function load() {
  const msg = $("#msg");
  const q = query();
  $("#export").href = items.csvUrl(q);
  try {
    if (FIGURE) {
      // the report's own list: the items as of the report's instant, not today's filters
      const found = await api(`/api/stats/records${location.search}`);
      state.figure = found;
      state.rows = found.records.slice(state.page * PAGE, (state.page + 1) * PAGE);
      state.more = found.records.length > (state.page + 1) * PAGE;
    } else {
      const found = await items.list({ ...q, limit: PAGE + 1, offset: state.page * PAGE });
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
  const [units, handlers] = await Promise.all([items.units().catch(() => []), items.handlers().catch(() => [])]);
  state.units = new Map(units.map((u) => [u.id, u]));
  state.handlers = handlers;
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
