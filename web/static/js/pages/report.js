// The printable statistics report of a year (/report?year=), from /api/stats, in the page's
// language: every key of the statistics is shown by its label, each breakdown is checked
// against its total. Opened from the dashboard in a new tab.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { RATE_KEYS, fmtPercent, label, ratePercent } from "../stats.js";
import { $, fmtTime, h } from "../ui.js";

i18n.setup();
const year = Number(new URLSearchParams(location.search).get("year")) || new Date().getFullYear();
let stats = null;

function table(head, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...head.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c, i) => (i === 0 ? h("th", { scope: "row" }, String(c)) : h("td", {}, String(c))))))),
  );
}

function counts(breakdown, prefix) {
  const rows = Object.entries(breakdown.counts).map(([k, n]) => [label(prefix, k), n]);
  rows.push([`${t("report_total")}（${label("fig_", breakdown.total_name)} ${breakdown.total}）`, breakdown.sum]);
  return table([t("report_item"), t("report_count")], rows);
}

const BREAKDOWNS = [
  ["by_channel", "by_channel", "channel_"],
  ["by_online_platform", "by_platform", ""],
  ["by_type", "by_type", "type_"],
  ["by_state", "by_state", "item_state_"],
  ["by_category", "by_category", "cat_"],
];

function render(s) {
  const last = new Date(Date.parse(s.end) - 86400000).toISOString().slice(0, 10);
  const mismatches = BREAKDOWNS.map(([key, name]) => [s[key], name]).filter(([b]) => b.sum !== b.total);
  const section = (key, ...body) => [h("h2", {}, t(key)), ...body];
  $("#doc").replaceChildren(
    h("h1", { class: "report" }, t("report_title", { year })),
    h("p", {}, `${t("report_period", { start: s.start, end: last })}　${t("report_generated", { time: fmtTime(new Date().toISOString()) })}`),
    ...section(
      "report_checks",
      ...(mismatches.length
        ? mismatches.map(([b, name]) => h("p", { class: "mismatch" }, t("report_mismatch", { name: t(name), sum: b.sum, total: b.total })))
        : [h("p", { class: "ok" }, t("report_checks_ok"))]),
    ),
    ...section(
      "totals",
      table(
        [t("report_item"), t("report_count")],
        ["received", "concluded", "in_progress", "closed_otherwise", "transfers", "assignments"].map((k) => [t(`fig_${k}`), s[k]]),
      ),
    ),
    ...section(
      "rates",
      table(
        [t("report_item"), t("report_value"), t("report_numerator"), t("report_denominator")],
        RATE_KEYS.map((k) => [t(`rate_name_${k}`), fmtPercent(ratePercent(s, k)), s.rates[k].numerator, s.rates[k].denominator]),
      ),
    ),
    ...section(
      "report_from_above",
      table(
        [t("report_item"), t("report_assigned"), t("report_led_by_other"), t("report_resolved"), t("report_resolution_rate")],
        s.from_above.map((l) => [label("level_", l.level), l.assigned, l.led_by_other_unit, l.resolved, fmtPercent(l.resolution_rate.percent)]),
      ),
    ),
    ...BREAKDOWNS.flatMap(([key, name, prefix]) => section(name, counts(s[key], prefix))),
    ...section(
      "sessions_by_kind",
      table(
        [t("report_item"), t("report_count")],
        [
          ...Object.entries(s.sessions.by_kind).map(([k, n]) => [label("kind_", k), n]),
          [t("fig_visit_batches"), s.sessions.visit_batches],
          [t("fig_visit_person_times"), s.sessions.visit_person_times],
          [t("fig_leader_receptions"), s.sessions.leader_receptions],
        ],
      ),
    ),
  );
  document.title = `${t("report_title", { year })} · ${t("app")}`;
}

async function load() {
  try {
    stats = await items.statistics(year);
    render(stats);
  } catch (err) {
    $("#msg").textContent = err.unavailable ? t("unavailable") : `${t("load_failed")}: ${errorText(err)}`;
  }
}

$("#print").addEventListener("click", () => window.print());
i18n.onChange(() => stats && render(stats));
load();
