// Statistics as plain SVG bar charts (no library): received by channel, the rates, overdue
// items per unit, video sessions per kind; the printable annual report from the items API.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { $, api, h } from "../ui.js";

i18n.setup();
const SVG = "http://www.w3.org/2000/svg";
const CHANNEL = { letter: ["来信", "Letter"], visit: ["来访", "Visit"], online: ["网上信访", "Online"], phone: ["电话", "Phone"], fax: ["传真", "Fax"], video: ["视频信访", "Video"] };

function label(map, key) {
  const e = map[key];
  return e ? e[i18n.lang() === "en" ? 1 : 0] : key;
}

/** A horizontal bar chart with a text table for screen readers. */
function bars(title, rows, fmt = (v) => String(v)) {
  if (!rows.length) return h("p", { class: "muted" }, t("no_data"));
  const max = Math.max(1, ...rows.map((r) => r[1]));
  const rowH = 28;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 420 ${rows.length * rowH + 4}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  svg.style.width = "100%";
  rows.forEach(([name, value], i) => {
    const y = i * rowH + 2;
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", "0");
    text.setAttribute("y", String(y + 18));
    text.setAttribute("font-size", "13");
    text.setAttribute("fill", "#1a1f29");
    text.textContent = name;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", "130");
    rect.setAttribute("y", String(y + 4));
    rect.setAttribute("height", "18");
    rect.setAttribute("width", String(Math.max(1, (value / max) * 230)));
    rect.setAttribute("fill", "#0b4f9c");
    const num = document.createElementNS(SVG, "text");
    num.setAttribute("x", String(136 + (value / max) * 230));
    num.setAttribute("y", String(y + 18));
    num.setAttribute("font-size", "13");
    num.setAttribute("fill", "#1a1f29");
    num.textContent = fmt(value);
    svg.append(text, rect, num);
  });
  const table = h("table", { class: "sr-only" }, h("caption", {}, title), ...rows.map(([n, v]) => h("tr", {}, h("th", { scope: "row" }, n), h("td", {}, fmt(v)))));
  return h("div", {}, svg, table);
}

async function load(year) {
  $("#report").href = items.annualUrl(year);
  $("#msg").textContent = "";
  try {
    const s = await items.statistics(year);
    $("#by-channel").replaceChildren(bars(t("by_channel"), Object.entries(s.by_channel.counts).map(([k, v]) => [label(CHANNEL, k), v])));
    const rates = Object.entries(s.rates).map(([k, r]) => [k, r.percent ?? 0]);
    $("#rates").replaceChildren(bars(t("completion_rate"), rates, (v) => `${v.toFixed(1)}%`));
  } catch (err) {
    const text = err.unavailable ? t("unavailable") : `${t("load_failed")}: ${errorText(err)}`;
    $("#by-channel").replaceChildren(h("p", { class: "muted" }, text));
    $("#rates").replaceChildren(h("p", { class: "muted" }, text));
  }
  try {
    const [orgs, due] = await Promise.all([api("/api/orgs"), items.mine()]);
    const names = new Map(orgs.units.map((u) => [u.id, u.name]));
    const per = new Map();
    for (const d of due.filter((x) => x.days_left < 0)) {
      const name = names.get(d.due_unit_id || d.handling_unit_id) || "?";
      per.set(name, (per.get(name) || 0) + 1);
    }
    $("#overdue").replaceChildren(bars(t("overdue_by_unit"), [...per.entries()]));
  } catch (err) {
    $("#overdue").replaceChildren(h("p", { class: "muted" }, err.unavailable ? t("unavailable") : errorText(err)));
  }
  try {
    const data = await api("/api/sessions?limit=500");
    const per = new Map();
    for (const x of data.sessions) per.set(t(`kind_${x.kind}`), (per.get(t(`kind_${x.kind}`)) || 0) + 1);
    $("#kinds").replaceChildren(bars(t("sessions_by_kind"), [...per.entries()]));
  } catch (err) {
    $("#kinds").replaceChildren(h("p", { class: "muted" }, errorText(err)));
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
