// Video on demand (视频点播): recordings of sessions in scope, filtered by kind, date, unit and
// text (title, unit, trainer); played from /api/recordings/{id}/file, which serves Range
// requests so the player can seek.

import * as i18n from "../i18n.js";
import { t } from "../i18n.js";
import { $, api, fmtTime, h } from "../ui.js";

i18n.setup();
let units = new Map();

async function search() {
  const f = $("#filters");
  const kind = f.kind.value;
  const list = $("#results");
  try {
    const data = await api(`/api/sessions?limit=200${kind ? `&kind=${kind}` : ""}`);
    const from = f.from.value ? Date.parse(f.from.value) : null;
    const to = f.to.value ? Date.parse(f.to.value) + 86400000 : null;
    const text = f.text.value.trim().toLowerCase();
    const hits = data.sessions.filter((s) => {
      const at = Date.parse(s.created_at);
      if (!s.recorded || (from && at < from) || (to && at >= to)) return false;
      const hay = `${s.title || ""} ${units.get(s.unit_id) || ""} ${s.category || ""}`.toLowerCase();
      return !text || hay.includes(text);
    });
    const rows = [];
    for (const s of hits.slice(0, 30)) {
      const detail = await api(`/api/sessions/${s.id}`);
      const names = new Map(detail.participants.map((p) => [p.id, `${p.name} · ${i18n.roleName(p.role)}`]));
      for (const r of detail.recordings.filter((r) => !r.deleted)) {
        rows.push(
          h(
            "li",
            { "data-recording": r.id },
            h("span", {}, `${fmtTime(s.created_at)} · ${t(`kind_${s.kind}`)} · ${s.title || ""} · ${units.get(s.unit_id) || ""} · ${names.get(r.participant_id) || ""}`),
            h("button", { type: "button", "aria-label": `${t("play")} #${r.id}`, onclick: () => play(r, s) }, t("play")),
          ),
        );
      }
    }
    list.replaceChildren(...(rows.length ? rows : [h("li", { class: "muted" }, t("no_recordings"))]));
  } catch (err) {
    list.replaceChildren(h("li", { class: "error" }, `${t("load_failed")}: ${err.message}`));
  }
}

function play(r, s) {
  const player = $("#player");
  player.src = r.url;
  player.play().catch(() => {});
  $("#now").textContent = `#${r.id} · ${t(`kind_${s.kind}`)} · ${s.title || ""} · sha256 ${String(r.sha256 || "").slice(0, 16)}`;
}

async function init() {
  try {
    const orgs = await api("/api/orgs");
    units = new Map(orgs.units.map((u) => [u.id, u.name]));
  } catch {
    units = new Map();
  }
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search();
  });
  const wanted = new URLSearchParams(location.hash.slice(1)).get("recording");
  await search();
  if (wanted) {
    const player = $("#player");
    player.src = `/api/recordings/${encodeURIComponent(wanted)}/file`;
  }
}
init();
