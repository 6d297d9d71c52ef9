// Statistics of the chosen year as plain SVG bar charts (no library), all from /api/stats:
// totals, received by channel, the rates, video sessions per kind; overdue items per unit from
// the due lists; the printable report (/report) opens in a new tab.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { RATE_KEYS, fmtPercent, label, ratePercent } from "../stats.js";
import { $, api, h } from "../ui.js";

i18n.setup();
const SVG = "http://www.w3.org/2000/svg";

function svgText(x, y, text, anchor = "start") {
  const el = document.createElementNS(SVG, "text");
  el.setAttribute("x", String(x));
  el.setAttribute("y", String(y));
  el.setAttribute("font-size", "14");
  el.setAttribute("fill", "#1a1f29");
  el.setAttribute("text-anchor", anchor);
  el.textContent = text;
  return el;
}

/** A horizontal bar chart with a text table for screen readers. Each row: its label on a line
 * of its own, the bar below it and the figure after the bar, so a long label (English) never
 * runs into its bar. `rows`: [label, value (null: nothing to show), key]. */
function bars(box, title, rows, fmt = (v) => String(v), max = null) {
  if (!rows.length) return h("p", { class: "muted" }, t("no_data"));
  const top = max ?? Math.max(1, ...rows.map((r) => r[1] || 0));
  const rowH = 44;
  // drawn at the box's own width (at most 540 px), so the text is 14 px on a phone as on a desk
  const full = Math.min(540, box.clientWidth || 420);
  const width = full - 70; // the longest bar leaves room for its figure
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${full} ${rows.length * rowH + 4}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  svg.style.width = `${full}px`;
  svg.style.maxWidth = "100%";
  rows.forEach(([name, value, key], i) => {
    const y = i * rowH + 2;
    const w = value ? Math.max(1, (value / top) * width) : 0;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", "0");
    rect.setAttribute("y", String(y + 21));
    rect.setAttribute("height", "16");
    rect.setAttribute("width", String(w));
    rect.setAttribute("fill", "#0b4f9c");
    const g = document.createElementNS(SVG, "g");
    if (key) g.dataset.key = key;
    g.append(svgText(0, y + 15, name), rect, svgText(w + 6, y + 33, fmt(value)));
    svg.append(g);
  });
  const table = h("table", { class: "sr-only" }, h("caption", {}, title), ...rows.map(([n, v, key]) => h("tr", { "data-key": key || null }, h("th", { scope: "row" }, n), h("td", {}, fmt(v)))));
  return h("div", {}, svg, table);
}

const FIGURES = ["received", "concluded", "in_progress", "transfers", "assignments"];

async function load(year) {
  const report = $("#report");
  report.href = `/report?year=${year}`;
  $("#msg").textContent = "";
  try {
    const s = await items.statistics(year);
    $("#figures").replaceChildren(
      // each figure opens the list of the records it counts (the report's links, on /items)
      ...FIGURES.map((k) => {
        const link = s.links && s.links[k];
        const value = link ? h("a", { href: `/items${link.slice(link.indexOf("?"))}` }, String(s[k])) : String(s[k]);
        return h("div", { class: "figure", "data-figure": k }, h("strong", {}, value), h("span", {}, t(`fig_${k}`)));
      }),
    );
    $("#by-channel").replaceChildren(bars($("#by-channel"), t("by_channel"), Object.entries(s.by_channel.counts).map(([k, v]) => [label("channel_", k), v, k])));
    const rates = RATE_KEYS.map((k) => [t(`rate_name_${k}`), ratePercent(s, k), k]);
    $("#rates").replaceChildren(bars($("#rates"), t("rates"), rates, fmtPercent, 100));
    const kinds = Object.entries((s.sessions && s.sessions.by_kind) || {}).filter(([, n]) => n > 0);
    $("#kinds").replaceChildren(bars($("#kinds"), t("sessions_by_kind"), kinds.map(([k, n]) => [label("kind_", k), n, k])));
  } catch (err) {
    const text = err.unavailable ? t("unavailable") : `${t("load_failed")}: ${errorText(err)}`;
    for (const id of ["#figures", "#by-channel", "#rates", "#kinds"]) $(id).replaceChildren(h("p", { class: "muted" }, text));
  }
  try {
    const [orgs, due] = await Promise.all([api("/api/orgs"), items.mine()]);
    const names = new Map(orgs.units.map((u) => [u.id, u.name]));
    const per = new Map();
    for (const d of due.filter((x) => x.days_left < 0)) {
      const name = names.get(d.due_unit_id || d.handling_unit_id) || "?";
      per.set(name, (per.get(name) || 0) + 1);
    }
    $("#overdue").replaceChildren(bars($("#overdue"), t("overdue_by_unit"), [...per.entries()]));
  } catch (err) {
    $("#overdue").replaceChildren(h("p", { class: "muted" }, err.unavailable ? t("unavailable") : errorText(err)));
  }
  await calendarWarning();
  $("#main").dataset.year = String(year);
}

/** From 1 November, next year's holiday notice is due: warn while it is missing (/healthz). */
async function calendarWarning() {
  const box = $("#calendar-warning");
  try {
    const res = await fetch("/healthz");
    const missing = (await res.json()).calendar_notice_missing;
    box.textContent = missing ? t("calendar_missing", { year: missing }) : "";
    box.hidden = !missing;
    box.dataset.year = missing ? String(missing) : "";
  } catch {
    box.hidden = true; // the service's health is not this page's to report
  }
}

const year = new Date().getFullYear();
$("#year").value = String(year);
$("#yearf").addEventListener("submit", (ev) => {
  ev.preventDefault();
  load(Number($("#year").value));
});
i18n.onChange(() => load(Number($("#year").value)));
load(year);
