// Public lookup: the lookup code alone shows progress (states and dates, nothing personal); the
// last 4 phone digits are asked only to rate acceptance or handling when a stage is open.

import * as i18n from "../i18n.js";
import { errorText, t } from "../i18n.js";
import * as items from "../items.js";
import { $, h } from "../ui.js";

i18n.setup();
let current = null;
let rated = null; // {stage, satisfied} once this page has rated

/** Which deadline the public due date is, by the item's state (the unit's next duty). */
const DUE_BY_STATE = {
  registered: "route",
  transferred: "accept",
  assigned: "accept",
  received: "accept",
  accepted: "opinion",
  part_concluded: "opinion", // the rest is answered within the same handling period
  review_requested: "review_opinion",
  rereview_requested: "rereview_opinion",
};

function stageOf(p) {
  if (rated) return rated.stage;
  if (p.can_evaluate_handling) return "handling";
  if (p.can_evaluate_acceptance) return "acceptance";
  return null;
}

function stateText(state, label) {
  return i18n.has(`item_state_${state}`) ? t(`item_state_${state}`) : label || "";
}

function render(p) {
  current = p;
  $("#result").hidden = false;
  $("#state").textContent = stateText(p.state, p.label);
  $("#state").dataset.state = p.state;
  const dueKey = DUE_BY_STATE[p.state];
  $("#due").textContent = p.due_on ? `${t(dueKey ? `due_${dueKey}` : "due_on")}：${p.due_on}${p.due_provisional ? t("provisional") : ""}` : "";
  $("#due").dataset.due = dueKey || "";
  $("#steps").replaceChildren(...p.steps.map((s) => h("li", {}, `${s.on} · ${stateText(s.state, s.label)}`)));
  const stage = stageOf(p);
  $("#eval").hidden = !stage;
  if (stage) {
    $("#eval-h").textContent = t(stage === "handling" ? "lookup_rate_handling" : "lookup_rate_acceptance");
    $("#eval").dataset.stage = stage;
  }
  for (const b of document.querySelectorAll("[data-satisfied]")) {
    b.setAttribute("aria-pressed", String(!!rated && String(rated.satisfied) === b.dataset.satisfied));
    b.disabled = !!rated;
  }
  if (rated) $("#eval-msg").textContent = t("lookup_rated", { label: t(rated.satisfied ? "satisfied" : "not_satisfied") });
}

$("#lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#msg").textContent = "";
  $("#eval-msg").textContent = "";
  rated = null;
  try {
    render(await items.publicProgress($("#code").value));
  } catch (err) {
    $("#result").hidden = true;
    if (err.unavailable) $("#msg").textContent = t("unavailable");
    else if (err.status === 422) $("#msg").textContent = t("lookup_code_bad");
    else if (err.status === 404) $("#msg").textContent = t("lookup_not_found");
    else $("#msg").textContent = errorText(err);
  }
});

for (const b of document.querySelectorAll("[data-satisfied]")) {
  b.addEventListener("click", async () => {
    if (!current) return;
    const stage = stageOf(current);
    const phone = $("#phone4");
    const msg = $("#eval-msg");
    if (!/^[0-9]{4}$/.test(phone.value.trim())) {
      msg.textContent = t("lookup_phone_needed");
      phone.setAttribute("aria-invalid", "true");
      phone.focus();
      return;
    }
    phone.removeAttribute("aria-invalid");
    const satisfied = b.dataset.satisfied === "true";
    try {
      const p = await items.publicEvaluate(current.lookup_code, phone.value.trim(), stage, satisfied);
      rated = { stage, satisfied };
      render(p);
    } catch (err) {
      // the code has just shown progress, so a 404 here means the phone digits do not match
      if (err.status === 404) {
        msg.textContent = t("lookup_phone_wrong");
        phone.setAttribute("aria-invalid", "true");
      } else {
        msg.textContent = errorText(err);
      }
    }
  });
}

i18n.onChange(() => {
  if (current) render(current);
});
