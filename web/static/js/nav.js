// Counts in the navigation of the officials' pages (GET /api/items/counts): on 信访事项 the
// items overdue, due within 3 days and waiting for my units' acknowledgement (签收); on 积案
// the monthly entries missing. Asked on load, every minute, when the tab comes back and when
// a page says it changed something (the "pg:changed" event); a zero shows nothing.

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { api, h } from "./ui.js";

const REFRESH_MS = 60_000;
const BADGES = {
  "/items": [
    ["overdue", "nav_badge_overdue", "badge-red"],
    ["due_soon", "nav_badge_due_soon", "badge-amber"],
    ["to_acknowledge", "nav_badge_to_ack", "badge-plain"],
  ],
  "/backlog": [["backlog_missing", "nav_badge_missing", "badge-red"]],
};
const state = { counts: null, loads: 0 };
window.__pg = window.__pg || {};
window.__pg.nav = state;

function render() {
  for (const [href, badges] of Object.entries(BADGES)) {
    const link = document.querySelector(`header.bar nav a[href="${href}"]`);
    if (!link) continue;
    // beside the link, not in it: a page's i18n.apply() rewrites the link's text
    const li = link.parentElement;
    li.querySelectorAll(".nav-badge").forEach((b) => b.remove());
    if (!state.counts) continue;
    for (const [key, text, tone] of badges) {
      const n = state.counts[key] || 0;
      if (n > 0) li.append(h("a", { href, class: `nav-badge ${tone}`, "data-count": key }, t(text, { n })));
    }
  }
}

async function refresh() {
  try {
    state.counts = await api("/api/items/counts");
  } catch {
    state.counts = null; // signed out, or the route refused: no badges rather than wrong ones
  }
  state.loads += 1;
  render();
}

state.refresh = refresh;
i18n.onChange(render);
window.addEventListener("pg:changed", refresh);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});
setInterval(refresh, REFRESH_MS);
refresh();
