// /items/{lookup code}: one petition item: petitioner (masked until asked), content, linked
// sessions, the history (who, when, what), the next legal actions as buttons (the item's
// `allowed_actions` from web/items/actions.py), each a form with the fields the action needs and
// the deadline it sets, and the written notices the history has produced, ready to print.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { $, api, fmtTime, h, say } from "../ui.js";

i18n.setup();

const state = { item: null, history: [], sessions: [], attachments: [], units: new Map(), leaders: [], revealed: false, open: null, done: "" };
window.__pg = window.__pg || {};
window.__pg.item = state;

/** Body fields per action (mirrors web/items/actions.py): [name, kind, required] */
const FIELDS = {
  transfer: [["to_unit_id", "unit", true], ["handler_account_id", "handler", false], ["reason", "text", false]],
  assign: [["to_unit_id", "unit", true], ["due", "date", false], ["handler_account_id", "handler", false], ["reason", "text", false]],
  "transfer-out": [["organ", "line", true], ["organ_kind", "organ_kind", true], ["reason", "text", false]],
  divert: [["reason", "text", true]],
  "not-accept": [["reason", "text", true]],
  acknowledge: [],
  object: [["reason", "text", true]],
  accept: [["reason", "text", false]],
  extend: [["days", "days", true], ["approved_by", "leader", true], ["reason", "text", true]],
  opinion: [["decision", "text", true], ["legal_basis", "text", true], ["reason", "text", false]],
  deliver: [["delivered_on", "past", true]],
  "review-request": [["at", "past", false], ["reason", "text", false]],
  "review-opinion": [["decision", "text", true], ["legal_basis", "text", true], ["reason", "text", false]],
  "rereview-request": [["at", "past", false], ["reason", "text", false]],
  "rereview-opinion": [["decision", "text", true], ["legal_basis", "text", true], ["reason", "text", false]],
  conclude: [["petitioner_waived", "check", false], ["reason", "text", false]],
  "clock-stop": [["reason", "text", true]],
  "clock-resume": [],
  outcome: [["outcome", "outcome", true], ["resolved", "check", false], ["carried_out", "check", false], ["reason", "text", false]],
  note: [["reason", "text", true]],
  "part-conclude": [["decision", "text", true], ["reason", "text", false]],
  report: [["report", "text", true]],
  confirm: [["petitioner_waived", "check", false], ["reason", "text", false]],
  "return-report": [["reason", "text", true]],
  // not lifecycle events: their own routes (EXTRA below)
  supervise: [["reason", "text", true], ["due_on", "date", false]],
  evaluation: [["stage", "stage", true], ["satisfied", "satisfied", true], ["note", "line", true]],
  visit: [["kind", "visit_kind", true], ["visited_on", "past", true], ["persons", "persons", true], ["leader_account_id", "leader", false], ["place", "line", false], ["note", "text", false]],
};
/** The actions that are not lifecycle events: their route, and what the body adds. */
const EXTRA = {
  supervise: { path: (it) => `/api/items/${it.id}/supervise` },
  evaluation: { path: (it) => `/api/items/${it.id}/evaluation` },
  visit: { path: () => "/api/visits", body: (it) => ({ item_id: it.id }) },
};
const FIELD_LABEL = {
  to_unit_id: "to_unit", due: "report_due", reason: "reason", days: "ext_days", approved_by: "approved_by", decision: "decision", legal_basis: "legal_basis", petitioner_waived: "waived", outcome: "outcome_kind", resolved: "resolved", carried_out: "carried_out", report: "completion_report",
  handler_account_id: "f_handler", organ: "f_organ", organ_kind: "f_organ_kind", delivered_on: "f_delivered_on", at: "f_request_on", due_on: "f_supervise_due", stage: "f_stage", satisfied: "f_satisfied", note: "f_eval_note", kind: "f_visit_kind", visited_on: "f_visited_on", persons: "f_persons", leader_account_id: "f_visit_leader", place: "f_place",
};
const OUTCOMES = ["support", "explain", "not_support", "mediated", "diverted"];
const ORGAN_KINDS = ["city_department", "court", "procuratorate", "discipline_inspection", "other"];
const VISIT_KINDS = ["walk_in", "leader_reception", "outreach", "to_city", "to_province", "to_beijing"];
/** states in which a rating may be recorded (records/lifecycle.py: after acceptance) */
const RATED_STATES = ["accepted", "part_concluded", "reported", "opinion_issued", "review_requested", "review_opinion", "rereview_requested", "rereview_opinion", "concluded"];
/** history event → the notice it produces */
const NOTICE_OF = { accept: "acceptance", not_accept: "non-acceptance", extend: "extension", issue_opinion: "opinion", issue_review_opinion: "opinion", issue_rereview_opinion: "opinion" };

function label(prefix, key) {
  return key && i18n.has(`${prefix}${key}`) ? t(`${prefix}${key}`) : key || "";
}

const key = (name) => name.replace(/-/g, "_");
const unitName = (id) => (state.item && state.item.unit_names && state.item.unit_names[id]) || (state.units.get(id) || {}).name || "";

function dueText(due) {
  return due ? t("due_now", { what: label("due_", due.what), date: due.on }) + (due.provisional ? t("provisional") : "") : t("due_none");
}

function mask(value, keep = 4) {
  if (!value) return "";
  return value.length <= keep ? "*".repeat(value.length) : "*".repeat(value.length - keep) + value.slice(-keep);
}

function renderItem() {
  const it = state.item;
  $("#code").textContent = it.lookup_code;
  $("#state").textContent = label("item_state_", it.state);
  $("#state").dataset.state = it.state;
  const pairs = [
    ["item_type", label("type_", it.type)],
    ["channel", label("channel_", it.channel)],
    ["category", label("cat_", it.category)],
    ["registered_at", fmtTime(it.registered_at)],
    ["registering_unit", unitName(it.registering_unit_id)],
    ["handling_unit", unitName(it.handling_unit_id)],
  ];
  const ev = it.evaluation || {};
  const rated = (v) => (v === true ? t("f_satisfied_yes") : v === false ? t("f_satisfied_no") : t("not_rated"));
  pairs.push(["item_evaluation", `${t("stage_acceptance")}: ${rated(ev.acceptance)} · ${t("stage_handling")}: ${rated(ev.handling)}`]);
  $("#summary").replaceChildren(...pairs.flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v || "—")]));
  $("#due").textContent = dueText(it.due);
  $("#due").dataset.due = it.due ? it.due.on : "";
  const shown = state.revealed;
  $("#petitioners").replaceChildren(
    ...(it.anonymous || !it.petitioners.length
      ? [h("li", {}, t("anonymous"))]
      : it.petitioners.map((p) =>
          h(
            "li",
            { class: "petitioner" },
            h("strong", {}, shown ? p.name : p.name.slice(0, 1) + "*".repeat(Math.max(1, p.name.length - 1))),
            p.phone ? h("span", {}, `${t("petitioner_phone")}: ${shown ? p.phone : mask(p.phone)}`) : null,
            p.id_number ? h("span", {}, `${t("id_number")}: ${shown ? p.id_number : mask(p.id_number)}`) : null,
            p.address && shown ? h("span", {}, `${t("address")}: ${p.address}`) : null,
          ),
        )),
  );
  $("#reveal-box").hidden = shown || it.anonymous || !it.petitioners.length;
  const content = [["item_request", it.request], ["item_facts", it.facts], ["item_reasons", it.reasons]];
  $("#content").replaceChildren(...content.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]));
  renderActions();
  renderTimeline();
  renderNotices();
  renderSessions();
  renderAttachments();
  renderBacklog();
}

function renderBacklog() {
  const id = state.item.backlog_case_id;
  $("#backlog-link").replaceChildren(id ? h("a", { href: `/backlog?case=${id}` }, t("bl_flagged", { id })) : h("span", { class: "muted" }, t("bl_not_flagged")));
  $("#flag").hidden = !!id || !$("#flag-form").hidden;
  if (id) $("#flag-form").hidden = true;
}

function openFlag() {
  const it = state.item;
  const here = it.handling_unit_id || it.registering_unit_id;
  $("#bk-leader").replaceChildren(h("option", { value: "" }, "—"), ...state.leaders.map((l) => h("option", { value: l.id }, `${l.name} · ${l.unit_name}`)));
  $("#bk-units").replaceChildren(
    ...[...state.units.values()]
      .filter((u) => u.in_scope !== false && u.active !== false)
      .map((u) => {
        const box = h("input", { type: "checkbox", id: `bk-u-${u.id}`, name: "unit_ids", value: u.id });
        box.checked = u.id === here;
        return h("li", {}, h("label", { class: "check", for: `bk-u-${u.id}` }, box, h("span", {}, u.name)));
      }),
  );
  $("#flag-form").hidden = false;
  $("#flag").hidden = true;
  $("#bk-leader").focus();
}

async function flag(ev) {
  ev.preventDefault();
  const f = ev.target;
  const msg = $("#flag-msg");
  const units = [...f.querySelectorAll('input[name="unit_ids"]:checked')].map((b) => Number(b.value));
  try {
    await api(`/api/items/${state.item.id}/backlog`, {
      method: "POST",
      body: {
        leader_account_id: Number(f.leader_account_id.value),
        team: f.team.value,
        resolution_plan: f.resolution_plan.value,
        stability_plan: f.stability_plan.value,
        ledger: f.ledger.value,
        unit_ids: units,
        plan_due_on: f.plan_due_on.value || null,
      },
    });
    msg.textContent = "";
    await reload(state.item.id);
  } catch (err) {
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

function renderAttachments() {
  $("#attachments").replaceChildren(
    ...(state.attachments.length
      ? state.attachments.map((a) => h("li", { "data-attachment": a.id }, h("a", { href: items.attachmentUrl(state.item.id, a.id) }, a.name), h("span", { class: "muted" }, `${Math.max(1, Math.round(a.size / 1024))} KiB · ${fmtTime(a.added_at)}`)))
      : [h("li", { class: "muted" }, t("attach_none"))]),
  );
}

async function upload(ev) {
  ev.preventDefault();
  const f = ev.target;
  const msg = $("#upload-msg");
  const file = f.file.files[0];
  if (!file) return;
  try {
    const a = await items.upload(state.item.id, file);
    state.attachments = await items.attachments(state.item.id);
    renderAttachments();
    f.reset();
    msg.className = "ok";
    msg.textContent = t("attach_done", { name: a.name });
    say(msg.textContent);
  } catch (err) {
    msg.className = "error";
    msg.textContent = `${t("load_failed")}: ${errorText(err)}`;
  }
}

function actionButton(name) {
  return h("button", { type: "button", class: EXTRA[name] ? "secondary" : null, "data-action": name, "aria-expanded": String(state.open === name), onclick: () => openForm(name) }, label("action_", key(name)));
}

function renderActions() {
  const it = state.item;
  const allowed = it.allowed_actions || [];
  $("#actions").replaceChildren(...(allowed.length ? allowed.map(actionButton) : [h("p", { class: "muted" }, t("no_actions"))]));
  // records beside the lifecycle: supervision from above, a rating given to staff, a visit
  const more = [];
  if (it.may_supervise) more.push(actionButton("supervise"));
  const phone = (it.petitioners || []).some((p) => p.phone);
  if (RATED_STATES.includes(it.state) && !phone && !it.anonymous) more.push(actionButton("evaluation"));
  more.push(actionButton("visit"));
  $("#more-actions").replaceChildren(...more);
  $("#eval-hint").hidden = !(RATED_STATES.includes(it.state) && phone);
  $("#supervisions").replaceChildren(
    ...(it.supervisions || []).map((sv) => h("li", { "data-supervision": sv.id }, h("time", { datetime: sv.at }, fmtTime(sv.at)), " · ", h("strong", {}, sv.unit_name), " · ", sv.reason, sv.due_on ? ` · ${t("f_supervise_due")}: ${sv.due_on}` : "")),
  );
  $("#sv-box").hidden = !(it.supervisions || []).length;
}

function localToday() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10); // China
}

/** The receiving unit's officials, offered as its handler once the unit is chosen. */
async function fillHandlers(form) {
  const unit = form.elements.to_unit_id && form.elements.to_unit_id.value;
  const select = form.elements.handler_account_id;
  if (!select) return;
  const people = unit ? await items.handlers(unit).catch(() => []) : [];
  select.replaceChildren(h("option", { value: "" }, t("f_handler_none")), ...people.map((p) => h("option", { value: p.id }, `${p.name} · ${p.unit_name}`)));
}

function field(name, kind, required) {
  const id = `af-${name}`;
  const common = { id, name, required: required || null };
  let control;
  if (kind === "handler") {
    control = h("select", common, h("option", { value: "" }, t("f_handler_none")));
  } else if (kind === "organ_kind") {
    control = h("select", common, ...ORGAN_KINDS.map((o) => h("option", { value: o }, label("organ_", o))));
  } else if (kind === "visit_kind") {
    control = h("select", common, ...VISIT_KINDS.map((o) => h("option", { value: o }, label("visit_", o))));
  } else if (kind === "stage") {
    control = h("select", common, ...["acceptance", "handling"].map((o) => h("option", { value: o }, label("stage_", o))));
  } else if (kind === "satisfied") {
    control = h("select", common, h("option", { value: "" }, "—"), h("option", { value: "true" }, t("f_satisfied_yes")), h("option", { value: "false" }, t("f_satisfied_no")));
  } else if (kind === "persons") {
    control = h("input", { ...common, type: "number", min: "1", max: "10000", inputmode: "numeric", value: "1" });
  } else if (kind === "past") {
    control = h("input", { ...common, type: "date", max: localToday(), value: required ? localToday() : null });
  } else if (kind === "line") {
    control = h("input", { ...common, type: "text", maxlength: "200" });
  } else if (kind === "unit") {
    const here = state.item.handling_unit_id || state.item.registering_unit_id;
    control = h("select", common, h("option", { value: "" }, "—"), ...[...state.units.values()].filter((u) => u.id !== here && u.active !== false).map((u) => h("option", { value: u.id }, u.name)));
  } else if (kind === "leader") {
    control = h("select", common, h("option", { value: "" }, "—"), ...state.leaders.map((l) => h("option", { value: l.id }, `${l.name} · ${l.unit_name}`)));
  } else if (kind === "outcome") {
    control = h("select", common, ...OUTCOMES.map((o) => h("option", { value: o }, label("outcome_", o))));
  } else if (kind === "days") {
    control = h("input", { ...common, type: "number", min: "1", max: "30", inputmode: "numeric" });
  } else if (kind === "date") {
    control = h("input", { ...common, type: "date" });
  } else if (kind === "check") {
    return h("label", { class: "check", for: id }, h("input", { id, name, type: "checkbox" }), h("span", {}, t(FIELD_LABEL[name])));
  } else {
    control = h("textarea", { ...common, maxlength: "2000" });
  }
  return h("div", {}, h("label", { for: id }, t(FIELD_LABEL[name])), control);
}

function openForm(name) {
  state.open = name;
  const form = $("#action-form");
  $("#form-h").textContent = label("action_", key(name));
  $("#form-due").textContent = `${dueText(state.item.due)}${i18n.has(`sets_${key(name)}`) ? ` · ${t("sets_due", { text: t(`sets_${key(name)}`) })}` : ""}`;
  $("#form-fields").replaceChildren(...FIELDS[name].map(([n, kind, req]) => field(n, kind, req)));
  if (form.elements.to_unit_id) form.elements.to_unit_id.onchange = () => fillHandlers(form);
  form.dataset.action = name;
  form.hidden = false;
  renderActions();
  const first = form.querySelector("input, select, textarea, button");
  if (first) first.focus();
}

function closeForm() {
  state.open = null;
  $("#action-form").hidden = true;
  renderActions();
}

function bodyOf(name, form) {
  const body = {};
  for (const [n, kind] of FIELDS[name]) {
    const el = form.elements[n];
    if (kind === "check") body[n] = el.checked;
    else if (el.value === "") continue;
    else if (["unit", "leader", "days", "handler", "persons"].includes(kind)) body[n] = Number(el.value);
    else if (kind === "satisfied") body[n] = el.value === "true";
    else body[n] = el.value;
  }
  return body;
}

async function submit(ev) {
  ev.preventDefault();
  const form = ev.target;
  const name = form.dataset.action;
  const msg = $("#action-msg");
  try {
    const extra = EXTRA[name];
    const body = bodyOf(name, form);
    const updated = extra
      ? (await api(extra.path(state.item), { method: "POST", body: { ...body, ...(extra.body ? extra.body(state.item) : {}) } }), state.item)
      : await items.act(state.item.id, name, body);
    state.done = name;
    window.dispatchEvent(new Event("pg:changed")); // the navigation's counts (nav.js)
    closeForm();
    await reload(updated.id);
    msg.className = "ok";
    msg.dataset.done = name;
    msg.textContent = EXTRA[name] ? t(`done_${name}`, { n: body.persons || 0 }) : t("due_after", { due: dueText(state.item.due) });
    say(msg.textContent);
  } catch (err) {
    msg.className = "error";
    delete msg.dataset.done;
    // a late review request: said with the window's last day, which the page knows
    const due = state.item.due;
    msg.textContent = err.code === "window_closed" ? t("err_window_closed", { date: due ? due.on : "" }) : `${t("load_failed")}: ${errorText(err)}`;
  }
}

function what(e) {
  const parts = [label("ev_", e.type)];
  const d = e.data || {};
  if (d.to_unit_id) parts.push(`→ ${unitName(d.to_unit_id)}`);
  if (d.organ) parts.push(`→ ${d.organ}`);
  if (d.delivered_on) parts.push(`${t("f_delivered_on")}: ${d.delivered_on}`);
  if (d.days) parts.push(`+${d.days}`);
  if (d.decision) parts.push(`${t("decision")}: ${d.decision}`);
  if (e.reason) parts.push(`${t("reason")}: ${e.reason}`);
  return parts.join(" · ");
}

function renderTimeline() {
  $("#timeline").replaceChildren(
    ...state.history.map((e) =>
      h(
        "li",
        { "data-event": e.type },
        h("time", { datetime: e.at }, fmtTime(e.at)),
        " · ",
        h("strong", {}, e.account_name || (e.account_id ? t("unknown_account", { id: e.account_id }) : t("by_system"))),
        " · ",
        what(e),
        " → ",
        label("item_state_", e.to_state),
      ),
    ),
  );
}

function renderNotices() {
  const kinds = [...new Set(state.history.map((e) => NOTICE_OF[e.type]).filter(Boolean))];
  $("#notices").replaceChildren(
    ...(kinds.length
      ? kinds.map((k) => h("li", { "data-notice": k }, h("a", { href: items.noticeUrl(state.item.id, k), target: "_blank", rel: "noopener" }, `${label("notice_", key(k))} · ${t("notice_open")}`)))
      : [h("li", { class: "muted" }, t("no_notices"))]),
  );
}

function renderSessions() {
  $("#sessions").replaceChildren(
    ...(state.sessions.length
      ? state.sessions.map((s) => h("li", { "data-session": s.id }, h("span", {}, fmtTime(s.created_at)), h("span", {}, label("kind_", s.kind)), h("span", { class: "badge" }, label("state_", s.state))))
      : [h("li", { class: "muted" }, t("no_sessions"))]),
  );
}

async function reload(id) {
  const [it, hist, sess, att] = await Promise.all([items.item(id), items.history(id), items.sessions(id).catch(() => []), items.attachments(id).catch(() => [])]);
  state.item = it;
  state.attachments = att;
  state.history = hist;
  state.sessions = sess;
  renderItem();
}

async function init() {
  try {
    const me = await api("/api/me");
    $("#me").textContent = me.name || "";
  } catch {
    location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
    return;
  }
  const code = decodeURIComponent(location.pathname.split("/").pop() || "");
  const [units, leaders] = await Promise.all([items.units().catch(() => []), items.leaders().catch(() => [])]);
  state.units = new Map(units.map((u) => [u.id, u]));
  state.leaders = leaders;
  try {
    const found = await items.byCode(code);
    await reload(found.id);
    $("#item").hidden = false;
  } catch (err) {
    $("#msg").textContent = `${t("load_failed")}: ${errorText(err)}`;
    return;
  }
  $("#action-form").addEventListener("submit", submit);
  $("#form-cancel").addEventListener("click", closeForm);
  $("#upload").addEventListener("submit", upload);
  $("#flag").addEventListener("click", openFlag);
  $("#flag-form").addEventListener("submit", flag);
  $("#flag-cancel").addEventListener("click", () => {
    $("#flag-form").hidden = true;
    renderBacklog();
  });
  $("#reveal").addEventListener("click", async () => {
    // the server masks identity numbers and phones in every view; each whole value is asked
    // for on its own, with the reason, and the server writes who saw what and why
    const reason = $("#reveal-reason").value.trim();
    const it = state.item;
    try {
      const petitioners = await Promise.all(
        it.petitioners.map(async (p, position) => {
          const full = { ...p };
          for (const field of ["phone", "id_number"]) {
            if (!p[field]) continue;
            const r = await api(`/api/items/${it.id}/petitioners/${position}/reveal`, {
              method: "POST",
              body: { field, reason },
            });
            full[field] = r.value;
          }
          return full;
        }),
      );
      state.item = { ...it, petitioners };
      state.revealed = true;
      renderItem();
      say(t("revealed"));
    } catch (err) {
      say(errorText(err));
    }
  });
  i18n.onChange(() => {
    renderItem();
    if (state.open) openForm(state.open);
  });
}

init();
