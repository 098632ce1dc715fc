"""The policy file (YAML at ``NPSLOOP_POLICY_FILE``): SLA rules, routing, channels, throttles, themes.

Every key is validated at start-up; an error names the key path and the reason. Without
a file the built-in default applies (docs/policy.md).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from npsloop.shared.business_hours import BusinessHours
from npsloop.shared.integration_policy import Integrations
from npsloop.shared.settings import ConfigError
from npsloop.shared.taxonomy import TaxonomyError, ThemeDefinition, validate_taxonomy

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
    def _only_property_extras(self) -> Match:
        for name in self.model_extra or {}:
            if not name.startswith("properties.") or name == "properties.":
                raise ValueError(
                    f"unknown match key {name!r}; use score, segment, lifecycle_stage, "
                    "touchpoint, survey_kind, channel or properties.<name>"
                )
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


class SlackChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["slack"]
    url: AnyHttpUrl


class EmailChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["email"]
    to: list[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    subject_prefix: str = "[npsloop]"


class WebhookChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["webhook"]
    url: AnyHttpUrl
    # Standard Webhooks secret; without one the body goes out unsigned (id and timestamp only).
    secret: Annotated[str, StringConstraints(pattern=r"^whsec_[A-Za-z0-9+/=]{16,}$")] | None = None


Channel = Annotated[SlackChannel | EmailChannel | WebhookChannel, Field(discriminator="type")]


class Team(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[str] = Field(default_factory=list)  # round-robin assignees
    channel: str | None = None
    business_hours: BusinessHours | None = None


class RoutingRule(BaseModel):
    """Who owns a detractor's task and where its alerts go; the first matching rule wins."""

    model_config = ConfigDict(extra="forbid")
    match: Match = Field(default_factory=Match)
    assignee_from: str | None = None
    team: str | None = None
    channel: str | None = None
    escalate_to: str | None = None

    @field_validator("assignee_from")
    @classmethod
    def _fact_path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(properties|customer)\.[A-Za-z0-9_\-]+", value):
            raise ValueError("must name properties.<name> or customer.<field>, e.g. properties.account_owner")
        return value


class Referrals(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    channel: str | None = None  # default: the channel routing picks for the response


class ReviewRequests(BaseModel):
    """Public review-site requests. Offered to every respondent or to none: asking only
    promoters (review gating) breaks the review sites' rules, so it cannot be configured."""

    model_config = ConfigDict(extra="forbid")
    audience: str = "none"
    channel: str | None = None
    url: AnyHttpUrl | None = None

    @field_validator("audience")
    @classmethod
    def _no_gating(cls, value: str) -> str:
        if value not in ("every_respondent", "none"):
            raise ValueError(
                f"{value!r} is not allowed: review requests go to every_respondent or none; sending "
                "them only to some categories (review gating) breaks the review sites' rules"
            )
        return value

    @model_validator(mode="after")
    def _complete(self) -> ReviewRequests:
        if self.audience == "every_respondent" and (self.channel is None or self.url is None):
            raise ValueError("every_respondent needs a channel and the review site's url")
        return self


class Passives(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment_event: bool = True  # npsloop.customer.segment_changed.v1 for nurture tools


class Digest(BaseModel):
    """A periodic summary per team channel, sent at ``at`` in ``timezone`` every ``every``."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    every: timedelta = timedelta(days=1)
    at: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "09:00"
    timezone: str = "UTC"

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return BusinessHours(timezone=value).timezone


class Benchmark(BaseModel):
    """A reference NPS leadership compares against: an industry average, last year's figure, a target."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    nps: float = Field(ge=-100, le=100)


class CustomerMessages(BaseModel):
    """How a resolve's ``customer_message`` reaches the customer: npsloop emails it over SMTP,
    or only the ``customer_messaged`` event goes out, for a CRM to send it."""

    model_config = ConfigDict(extra="forbid")
    send_via: Literal["email", "event"] = "email"


class Routed(BaseModel):
    """What routing decided for one response."""

    team: str
    assignee_from: str | None = None
    members: list[str] = Field(default_factory=list)
    channel: str | None = None
    escalate_to: str | None = None
    business_hours: BusinessHours | None = None


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sla: list[SlaRule] = Field(default_factory=lambda: list(DEFAULT_SLA))
    sla_warning_at: float = Field(0.75, gt=0, lt=1)
    throttle: Throttle = Field(default_factory=Throttle)
    themes: list[dict[str, Any]] | None = None  # validated by shared.taxonomy
    business_hours: BusinessHours | None = None
    channels: dict[str, Channel] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    routing: list[RoutingRule] = Field(default_factory=list)
    default_queue: str = "cs"
    referrals: Referrals = Field(default_factory=Referrals)
    review_requests: ReviewRequests = Field(default_factory=ReviewRequests)
    passives: Passives = Field(default_factory=Passives)
    digest: Digest = Field(default_factory=Digest)
    benchmarks: list[Benchmark] = Field(default_factory=list, max_length=20)
    customer_messages: CustomerMessages = Field(default_factory=CustomerMessages)
    integrations: Integrations = Field(default_factory=Integrations)

    @field_validator("sla")
    @classmethod
    def _catch_all_detractors(cls, rules: list[SlaRule]) -> list[SlaRule]:
        if not rules:
            raise ValueError("needs at least one rule")
        return rules

    @model_validator(mode="after")
    def _channels_exist(self) -> Policy:
        known = ", ".join(sorted(self.channels)) or "none defined"
        refs = [
            (f"routing.{i}.{key}", getattr(rule, key))
            for i, rule in enumerate(self.routing)
            for key in ("channel", "escalate_to")
        ]
        refs += [(f"teams.{name}.channel", team.channel) for name, team in self.teams.items()]
        refs += [
            ("referrals.channel", self.referrals.channel),
            ("review_requests.channel", self.review_requests.channel),
        ]
        for path, name in refs:
            if name is not None and name not in self.channels:
                raise ValueError(f"{path}: unknown channel {name!r} (channels: {known})")
        return self

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

    def route(self, facts: dict[str, Any]) -> Routed:
        """The first matching routing rule, completed from its team; else the default queue."""
        for rule in self.routing:
            if rule.match.matches(facts):
                name = rule.team or self.default_queue
                team = self.teams.get(name, Team())
                return Routed(
                    team=name,
                    assignee_from=rule.assignee_from,
                    members=team.members,
                    channel=rule.channel or team.channel,
                    escalate_to=rule.escalate_to,
                    business_hours=team.business_hours or self.business_hours,
                )
        team = self.teams.get(self.default_queue, Team())
        return Routed(
            team=self.default_queue,
            members=team.members,
            channel=team.channel,
            business_hours=team.business_hours or self.business_hours,
        )

    def team_channels(self) -> dict[str, str]:
        """Each team's channel (its own, else the first routing rule's) for digests."""
        found: dict[str, str] = {name: t.channel for name, t in self.teams.items() if t.channel}
        for rule in self.routing:
            name = rule.team or self.default_queue
            channel = rule.channel or (self.teams[name].channel if name in self.teams else None)
            if channel and name not in found:
                found[name] = channel
        return found


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
        raise ConfigError(f"policy file {path}: " + "; ".join(_problems(exc))) from None
    policy.theme_definitions()  # an invalid taxonomy stops start-up too
    return policy


def _problems(exc: ValidationError) -> list[str]:
    """``key.path: reason`` per error; a whole-policy check already names its key in the reason."""
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        path = ".".join(str(p) for p in error["loc"])
        problems.append(f"{path}: {message}" if path else message)
    return problems
