"""The theme taxonomy: what a comment can be about.

A theme is defined by people, in the policy file, with any of a description, keywords
and examples. The built-in classifier uses all three zero-shot, so a theme added by a
user tags comments at once; the default themes also have hand-written lexicons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


class TaxonomyError(ValueError):
    """An invalid theme list; the message names the theme and the reason."""


class ThemeDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Slug: lowercase letters, digits and underscores, starting with a letter.")
    label: str | None = Field(None, description="Human-readable name; defaults to the id.")
    description: str = Field("", description="What comments on this theme are about, in plain words.")
    keywords: list[str] = Field(default_factory=list, description="Words or short phrases that signal the theme.")
    examples: list[str] = Field(default_factory=list, description="Example comments carrying the theme.")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(
                f"theme id {value!r} must be a slug: lowercase letters, digits and underscores, starting with a letter"
            )
        return value

    @field_validator("description")
    @classmethod
    def _strip(cls, value: str) -> str:
        return (value or "").strip()

    @field_validator("keywords", "examples")
    @classmethod
    def _clean_list(cls, value: list[str]) -> list[str]:
        return [item.strip() for item in value if item and item.strip()]

    @model_validator(mode="after")
    def _has_content(self) -> ThemeDefinition:
        if not (self.description or self.keywords or self.examples):
            raise ValueError(f"theme {self.id!r} needs at least one of description, keywords or examples")
        return self

    @property
    def display_label(self) -> str:
        return self.label or self.id.replace("_", " ").capitalize()


def validate_taxonomy(themes: Iterable[ThemeDefinition | dict[str, Any]]) -> list[ThemeDefinition]:
    """Validate a theme list (definitions or plain dicts from YAML); reject duplicates."""
    result: list[ThemeDefinition] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(themes):
        if isinstance(item, ThemeDefinition):
            theme = item
        elif isinstance(item, dict):
            try:
                theme = ThemeDefinition.model_validate(item)
            except ValidationError as exc:
                where = item.get("id", f"#{index + 1}")
                reasons = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'theme'}: {err['msg']}" for err in exc.errors()
                )
                raise TaxonomyError(f"themes[{index}] ({where}): {reasons}") from None
        else:
            raise TaxonomyError(f"themes[{index}]: expected a mapping with id/description/keywords/examples")
        if theme.id in seen:
            raise TaxonomyError(
                f"themes[{index}]: duplicate theme id {theme.id!r} (already defined at themes[{seen[theme.id]}])"
            )
        seen[theme.id] = index
        result.append(theme)
    return result


DEFAULT_THEMES: list[ThemeDefinition] = [
    ThemeDefinition(
        id="product_quality",
        label="Product quality",
        description="Quality of the product, service or treatment itself: whether it works, errors and bugs, "
        "defects, results and outcome, device and version compatibility.",
        keywords=["quality", "bug", "error", "broken", "defect", "glitch", "works", "result", "outcome"],
    ),
    ThemeDefinition(
        id="support_experience",
        label="Support and staff",
        description="How staff, support agents and the team treated the customer: friendliness, helpfulness, "
        "listening, competence, responsiveness and availability of people.",
        keywords=["staff", "support", "agent", "team", "friendly", "helpful", "rude", "listened"],
    ),
    ThemeDefinition(
        id="pricing",
        label="Pricing",
        description="Price, cost, fees, billing, subscriptions, licences, refunds and value for money.",
        keywords=["price", "cost", "expensive", "cheap", "fee", "billing", "subscription", "refund"],
    ),
    ThemeDefinition(
        id="missing_features",
        label="Missing features",
        description="Requests for features, options or services that do not exist yet.",
        keywords=["feature", "option", "wish", "please add", "would be nice", "missing"],
    ),
    ThemeDefinition(
        id="ease_of_use",
        label="Ease of use and access",
        description="How easy it is to use, navigate, contact, book or get access: interface, usability, "
        "booking and appointments, getting through.",
        keywords=["easy", "confusing", "interface", "navigate", "booking", "appointment", "user friendly"],
    ),
    ThemeDefinition(
        id="performance_reliability",
        label="Performance and reliability",
        description="Speed, waiting times, delays, crashes, outages, battery and memory use, organisation and "
        "efficiency of the service.",
        keywords=["slow", "fast", "wait", "delay", "crash", "freeze", "lag", "reliable", "battery"],
    ),
    ThemeDefinition(
        id="onboarding_communication",
        label="Onboarding and communication",
        description="Information, explanations, guidance, onboarding, documentation and keeping the customer informed.",
        keywords=["information", "explained", "communication", "kept informed", "instructions", "onboarding"],
    ),
    ThemeDefinition(
        id="delivery_logistics",
        label="Delivery and logistics",
        description="Delivery, shipping, transport, location, parking and getting to or receiving things.",
        keywords=["delivery", "shipping", "parcel", "courier", "parking", "location", "transport"],
    ),
]

DEFAULT_THEME_IDS: tuple[str, ...] = tuple(t.id for t in DEFAULT_THEMES)
