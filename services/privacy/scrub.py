"""Rewriting stored payloads (event envelopes, rendered alerts) without one person's data.

Payloads are copies: the event log, dead letters and delivery envelopes each hold the
customer block and the comment as they were when the event was written, and alerts hold
them inside rendered text. A :class:`Scrubber` walks JSON and replaces what it was told to
forget; text that is not JSON gets the same substring replacement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ERASED = "[erased]"
# Substrings shorter than this are too likely to occur by chance in unrelated text.
MIN_SUBSTRING = 3
# Kept on an anonymised customer block: they describe the account, not the person, and
# NPS by segment/account keeps working after an erasure.
KEPT_CUSTOMER_FIELDS = ("account_id", "segment")


@dataclass
class Scrubber:
    """Forget ``exact`` values (anywhere), ``substrings`` (inside text), and the customer block.

    ``customer_id``/``pseudonym`` replace the customer's id wherever it is a whole value,
    and turn every ``customer`` object for that id into ``{"id": pseudonym, ...}``.
    ``redact_keys`` are keys whose values become ``None`` wherever they appear.
    """

    substrings: set[str] = field(default_factory=set)
    customer_id: str | None = None
    pseudonym: str | None = None
    redact_keys: frozenset[str] = frozenset()
    replacement: str = ERASED

    def __post_init__(self) -> None:
        # Longest first, so a comment is replaced whole before a name inside it.
        self._needles = sorted((s for s in self.substrings if s and len(s) >= MIN_SUBSTRING), key=len, reverse=True)

    def text(self, value: str) -> str:
        if self.customer_id is not None and value == self.customer_id:
            return self.pseudonym or self.replacement
        for needle in self._needles:
            if needle in value:
                value = value.replace(needle, self.replacement)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return self._object(value)
        return value

    def _object(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.customer_id is not None and obj.get("id") == self.customer_id and _looks_like_customer(obj):
            kept = {k: obj[k] for k in KEPT_CUSTOMER_FIELDS if k in obj}
            return {"id": self.pseudonym or self.replacement, **kept}
        out: dict[str, Any] = {}
        for key, item in obj.items():
            if key in self.redact_keys and item is not None:
                out[key] = None
            elif key == "customer_id" and self.customer_id is not None and item == self.customer_id:
                out[key] = self.pseudonym or self.replacement
            else:
                out[key] = self.value(item)
        return out

    def document(self, raw: str) -> str:
        """A stored payload rewritten; JSON stays JSON with the same separators as the writer's."""
        try:
            parsed = json.loads(raw)
        except ValueError:
            return self.text(raw)
        if not isinstance(parsed, (dict, list)):
            return self.text(raw)
        return json.dumps(self.value(parsed), separators=(",", ":"), ensure_ascii=False)

    def changes(self, raw: str) -> bool:
        return self.rewrite(raw) is not None

    def rewrite(self, raw: str) -> str | None:
        """:meth:`document`, or None when it would change nothing but the JSON's spacing."""
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, (dict, list)):
            text = self.text(raw)
            return None if text == raw else text
        scrubbed = self.value(parsed)
        return None if scrubbed == parsed else json.dumps(scrubbed, separators=(",", ":"), ensure_ascii=False)


def _looks_like_customer(obj: dict[str, Any]) -> bool:
    # A customer block carries only these keys; a task or response object also has an
    # "id" but never equal to the customer id, so this is a belt-and-braces check.
    return set(obj) <= {"id", "email", "name", "account_id", "segment", "external_id", "phone"}
