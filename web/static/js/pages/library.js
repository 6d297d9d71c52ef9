// Video on demand (视频点播): recordings of sessions in scope, filtered by kind, date, unit and
// text (title, unit, trainer); played from /api/recordings/{id}/file, which serves Range
// requests so the player can seek.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import { $, api, fmtTime, h } from "../ui.js";

i18n.setup();
let units = new Map();

async function search() {
  const f = $("#filters");
  const kind = f.kind.value;
  const list = $("#results");
  list.dataset.busy = "1"; // tests wait for the search to settle
  try {
    const data = await api(`/api/sessions?limit=200${kind ? `&kind=${kind}` : ""}`);
    const from = f.from.value ? Date.parse(f.from.value) : null;
    const to = f.to.value ? Date.parse(f.to.value) + 86400000 : null;
    const text = f.text.value.trim().toLowerCase();
    const hits = data.sessions.filter((s) => {
      const at = Date.parse(s.created_at);
      if (!s.recorded || (from && at < from) || (to && at >= to)) return false;
      // the category by its key and by its label in both languages (房屋, 房屋与拆迁, housing)
      const cat = s.category ? `${s.category} ${i18n.both(`cat_${s.category}`)}` : "";
      const hay = `${s.title || ""} ${units.get(s.unit_id) || ""} ${cat} ${i18n.both(`kind_${s.kind}`)}`.toLowerCase();
      return !text || hay.includes(text);
    });
    const rows = [];
    for (const s of hits.slice(0, 30)) {
      const detail = await api(`/api/sessions/${s.id}`);
      const names = new Map(detail.participants.map((p) => [p.id, `${p.name} · ${i18n.roleName(p.role)}`]));
      const recs = detail.recordings.filter((r) => !r.deleted).sort(byPlace);
      for (const r of recs) {
        const label = recordingLabel(r, names);
        rows.push(
          h(
            "li",
            { "data-recording": r.id },
            h("span", {}, `${fmtTime(s.created_at)} · ${t(`kind_${s.kind}`)} · ${s.title || ""} · ${units.get(s.unit_id) || ""}`),
            h("br"),
            h("span", { class: "rec-label" }, label),
            h("button", { type: "button", "aria-label": `${t("play")} #${r.id} ${label}`, onclick: () => play(r, s, label) }, t("play")),
          ),
        );
      }
    }
    list.replaceChildren(...(rows.length ? rows : [h("li", { class: "muted" }, t("no_recordings"))]));
  } catch (err) {
    list.replaceChildren(h("li", { class: "error" }, `${t("load_failed")}: ${errorText(err)}`));
  } finally {
    delete list.dataset.busy;
  }
}

// The composed playback first, then each participant's files in the order they were recorded.
function byPlace(a, b) {
  const playback = (r) => (r.state === "playback" ? 0 : 1);
  return (
    playback(a) - playback(b) ||
    String(a.started_at || "").localeCompare(String(b.started_at || "")) ||
    String(a.participant_id || "").localeCompare(String(b.participant_id || "")) ||
    a.id - b.id
  );
}

/** Who, which part and when: "张三 · 信访群众 · 第2段（定时分段） · 开始于 …". */
function recordingLabel(r, names) {
  if (r.state === "playback") return t("rec_playback");
  const parts = [names.get(r.participant_id) || t("rec_someone")];
  const reasonKey = `rec_reason_${r.reason}`;
  const reason = t(i18n.has(reasonKey) ? reasonKey : "rec_reason_other");
  if (r.derived_from != null) {
    parts.push(t("rec_recovered_copy", { id: r.derived_from }));
  } else if (r.segment != null) {
    parts.push(t("rec_part", { n: r.segment + 1, reason }));
  }
  if (r.state === "recovered (truncated)" && r.derived_from == null) parts.push(t("rec_truncated"));
  if (r.started_at) parts.push(t("rec_started", { time: fmtTime(r.started_at) }));
  return parts.join(" · ");
}

function play(r, s, label) {
  const player = $("#player");
  player.src = r.url;
  player.play().catch(() => {});
  $("#now").textContent = `#${r.id} · ${t(`kind_${s.kind}`)} · ${s.title || ""} · ${label} · sha256 ${String(r.sha256 || "").slice(0, 16)}`;
}

async function init() {
  try {
    const orgs = await api("/api/orgs");
    units = new Map(orgs.units.map((u) => [u.id, u.name]));
  } catch {
    units = new Map();
  }
  i18n.onChange(() => search());
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
