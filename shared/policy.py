"""The policy file (YAML at ``NPSLOOP_POLICY_FILE``): SLA rules, routing, throttles, themes.

Every key is validated at start-up; an error names the key path and the reason. Without
a file the built-in default applies (DESIGN §4).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.settings import ConfigError
from shared.taxonomy import TaxonomyError, ThemeDefinition, validate_taxonomy

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration like 30s, 15m, 24h or 90d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


class Match(BaseModel):
    """Conditions on a response; all given must hold. ``score`` is "0-4" or "7"."""

    model_config = ConfigDict(extra="allow")

    score: str | None = None
    segment: str | None = None
    lifecycle_stage: str | None = None
    touchpoint: str | None = None
    survey_kind: str | None = None
    channel: str | None = None

    @field_validator("score")
    @classmethod
    def _score_range(cls, value: str | None) -> str | None:
        if value is None:
            return None
        low, _, high = str(value).partition("-")
        if not low.strip().isdigit() or (high and not high.strip().isdigit()):
            raise ValueError("must be a score or a range such as 0-4")
        if not 0 <= int(low) <= int(high or low) <= 10:
            raise ValueError("must lie within 0-10")
        return str(value)

    @model_validator(mode="after")
    def _only_property_extras(self) -> "Match":
        for name in self.model_extra or {}:
            if not name.startswith("properties.") or name == "properties.":
                raise ValueError(f"unknown match key {name!r}; use score, segment, lifecycle_stage, "
                                 "touchpoint, survey_kind, channel or properties.<name>")
        return self

    def matches(self, facts: dict[str, Any]) -> bool:
        if self.score is not None:
            low, _, high = self.score.partition("-")
            score = facts.get("score")
            if score is None or not int(low) <= score <= int(high or low):
                return False
        for name in ("segment", "lifecycle_stage", "touchpoint", "survey_kind", "channel"):
            wanted = getattr(self, name)
            if wanted is not None and facts.get(name) != wanted:
                return False
        for name, wanted in (self.model_extra or {}).items():
            if (facts.get("properties") or {}).get(name.split(".", 1)[1]) != wanted:
                return False
        return True


class SlaRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: Match = Field(default_factory=Match)
    due_in: timedelta

    @field_validator("due_in", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)


class Throttle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    referral_every: timedelta = timedelta(days=30)
    survey_every: timedelta = timedelta(days=90)

    @field_validator("referral_every", "survey_every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)


DEFAULT_SLA = [
    SlaRule(match=Match(score="0-4"), due_in=timedelta(hours=24)),
    SlaRule(match=Match(score="5-6"), due_in=timedelta(hours=48)),
]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sla: list[SlaRule] = Field(default_factory=lambda: list(DEFAULT_SLA))
    sla_warning_at: float = Field(0.75, gt=0, lt=1)
    throttle: Throttle = Field(default_factory=Throttle)
    themes: list[dict[str, Any]] | None = None  # validated by shared.taxonomy
    # Later sections (channels, routing, business_hours, digest) are validated by the
    # follow-up service's policy models; kept here so one file configures everything.
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routing: list[dict[str, Any]] = Field(default_factory=list)
    business_hours: dict[str, Any] | None = None

    @field_validator("sla")
    @classmethod
    def _catch_all_detractors(cls, rules: list[SlaRule]) -> list[SlaRule]:
        if not rules:
            raise ValueError("needs at least one rule")
        return rules

    def theme_definitions(self) -> list[ThemeDefinition] | None:
        """The policy's taxonomy, or None for the built-in one; ConfigError when invalid."""
        if self.themes is None:
            return None
        try:
            return validate_taxonomy(self.themes)
        except TaxonomyError as exc:
            raise ConfigError(f"policy file: {exc}") from None

    def sla_for(self, facts: dict[str, Any]) -> timedelta:
        for rule in self.sla:
            if rule.match.matches(facts):
                return rule.due_in
        return self.sla[-1].due_in if self.sla[-1].match.score is None else timedelta(hours=48)


def load_policy(path: Path | None) -> Policy:
    """The policy from ``path`` (or the default); ConfigError names the offending key."""
    if path is None:
        return Policy()
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"NPSLOOP_POLICY_FILE: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"NPSLOOP_POLICY_FILE: {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"NPSLOOP_POLICY_FILE: {path} must hold a mapping of policy keys")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"policy file {path}: " + "; ".join(problems)) from None
    policy.theme_definitions()  # an invalid taxonomy stops start-up too
    return policy
