"""Analytics API shapes. Group keys are named after the grouping, so groups allow extra keys."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from npsloop.services.analytics.nps import Interval
from npsloop.shared.problems import UnprocessableContent

GROUP_BY_PATTERN = re.compile(
    r"^(segment|touchpoint|lifecycle_stage|survey_kind|theme|properties\.[A-Za-z0-9_.\-]{1,100})$"
)
GROUP_BY_HELP = "segment | touchpoint | lifecycle_stage | survey_kind | theme | properties.<name>"
DEFAULT_PERIOD = timedelta(days=90)
MAX_BUCKETS = 1000


class Shares(BaseModel):
    promoters: float | None
    passives: float | None
    detractors: float | None


class Change(BaseModel):
    delta: float | None = Field(description="NPS points since the previous interval")
    z: float | None
    significant: bool = Field(description="True when the change is significant at 95 % (two-sample z-test)")


class NpsStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    nps: float | None = Field(description="−100..100; null when there are no responses")
    promoters: int
    passives: int
    detractors: int
    total: int
    shares: Shares
    margin_of_error: float | None = Field(description="95 %: 1.96·√((p + d − (p − d)²)/n)·100")
    ci_low: float | None
    ci_high: float | None


class NpsInterval(NpsStats):
    start: date
    end: date
    change: Change | None = Field(None, description="Against the previous interval; null when either is empty")


class NpsGroup(NpsStats):
    intervals: list[NpsInterval] | None = None


class NpsReport(BaseModel):
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    group_by: str | None
    interval: Interval | None
    overall: NpsGroup
    groups: list[NpsGroup]
    benchmarks: list[BenchmarkOut] = Field(
        default_factory=list, description="Reference NPS values from the policy file (``benchmarks``)."
    )

    model_config = ConfigDict(populate_by_name=True)


class BenchmarkOut(BaseModel):
    name: str
    nps: float


class PropertySeen(BaseModel):
    name: str
    responses: int


class PropertiesReport(BaseModel):
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    properties: list[PropertySeen]

    model_config = ConfigDict(populate_by_name=True)


OUTCOMES = ("churned", "renewed", "expanded", "contracted")


class OutcomeCell(BaseModel):
    customers: int = Field(description="Distinct customers (or accounts, for account-level outcomes)")
    outcomes: int
    revenue: float = Field(description="Sum of the outcomes' revenue; outcomes without revenue count as 0")
    currencies: list[str] = Field(description="Currencies seen; sums across currencies are not converted")


class OutcomeCategory(BaseModel):
    category: Literal["promoter", "passive", "detractor", "unknown"]
    outcomes: dict[str, OutcomeCell]


class OutcomesReport(BaseModel):
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    categories: list[OutcomeCategory] = Field(
        description="The NPS category of the customer's (or account's) latest answer on or before the outcome's"
        " day; 'unknown' when they had not answered"
    )

    model_config = ConfigDict(populate_by_name=True)


class Period(BaseModel):
    start: datetime
    end: datetime


def resolve_period(start: datetime | None, end: datetime | None, now: datetime) -> Period:
    """``to`` is exclusive; default: the last 90 days. Both bounds arrive in UTC (``shared.clock.Instant``)."""
    end = end if end is not None else now
    start = start if start is not None else end - DEFAULT_PERIOD
    if start >= end:
        raise UnprocessableContent(
            "'from' must be before 'to'", errors=[{"field": "from", "message": "must be before 'to'"}]
        )
    return Period(start=start, end=end)


def open_period(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Either bound may be left open (exports default to everything); both arrive in UTC."""
    if start is not None and end is not None and start >= end:
        raise UnprocessableContent(
            "'from' must be before 'to'", errors=[{"field": "from", "message": "must be before 'to'"}]
        )
    return start, end


# docs/api.md says NPS groups by "properties.<name>"; a client may well write the singular, with a
# dot or a colon ("property.plan", "property:plan"); it means the same as "properties.plan".
PROPERTY_ALIAS = re.compile(r"^property[.:](?=.)")


def check_group_by(value: str | None) -> str | None:
    """The group a report is split by, in its one spelling (``properties.<name>`` for a property)."""
    if value is not None:
        value = PROPERTY_ALIAS.sub("properties.", value)
    if value in ("property", "properties", "properties."):
        message = "a property needs its name: properties.<name>, e.g. properties.plan"
        raise UnprocessableContent(f"group_by: {message}", errors=[{"field": "group_by", "message": message}])
    if value is not None and not GROUP_BY_PATTERN.match(value):
        raise UnprocessableContent(
            f"group_by must be one of {GROUP_BY_HELP}",
            errors=[{"field": "group_by", "message": f"must be one of {GROUP_BY_HELP}"}],
        )
    return value


class ThemeByCategory(BaseModel):
    count: int
    share: float | None = Field(description="Of the category's commented responses")


class ThemeTrendPoint(BaseModel):
    start: date
    count: int
    share: float | None


class ThemeStats(BaseModel):
    id: str
    total: int
    share: float | None
    nps: float | None = Field(description="NPS of the responses that mention this theme")
    by_category: dict[str, ThemeByCategory]
    trend: list[ThemeTrendPoint] | None = None


class ThemeReport(BaseModel):
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    interval: Interval | None
    responses: dict[str, int] = Field(description="Responses per category in the period")
    commented: dict[str, int] = Field(description="Responses with a comment per category (the share denominators)")
    themes: list[ThemeStats]

    model_config = ConfigDict(populate_by_name=True)


class FollowupReport(BaseModel):
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    now: datetime
    sla: dict[str, Any]
    time_to_first_touch: dict[str, Any]
    open_tasks_by_age: dict[str, Any]
    sla_board: dict[str, Any]
    recovery: dict[str, Any]
    outcomes: dict[str, Any]

    model_config = ConfigDict(populate_by_name=True)


ExportKind = Literal["responses", "tasks"]
