"""Every lifecycle action the API offers has a form on the item page and words in both languages.

The item page shows the item's ``allowed_actions`` as buttons; an action without a form would
open an empty one, and one without a label would show its internal key.
"""

from __future__ import annotations

import re
from pathlib import Path

from records.lifecycle import EventType
from web.items.actions import ACTIONS

STATIC = Path(__file__).resolve().parents[2] / "web" / "static" / "js"
ITEM_JS = (STATIC / "pages" / "item.js").read_text(encoding="utf-8")
I18N = (STATIC / "i18n.js").read_text(encoding="utf-8")


def _has_text(key: str) -> bool:
    # a key with a Chinese and an English text: key: ["…", "…"],
    return re.search(rf'^\s*{key}: \["[^"]+", "[^"]+"\],$', I18N, re.MULTILINE) is not None


def test_every_action_has_a_form_and_a_label_in_both_languages() -> None:
    fields = ITEM_JS[ITEM_JS.index("const FIELDS = {") :]
    fields = fields[: fields.index("\n};")]
    for spec in ACTIONS:
        key = spec.name.replace("-", "_")
        assert re.search(rf'^\s*"?{re.escape(spec.name)}"?: \[', fields, re.MULTILINE), spec.name
        assert _has_text(f"action_{key}"), f"action_{key}"
        for field in spec.body.model_fields:
            assert re.search(rf'\["{field}", "', fields), (spec.name, field)


def test_every_history_event_has_words() -> None:
    for event in EventType:
        assert _has_text(f"ev_{event.value}"), f"ev_{event.value}"
