"""HTTP endpoints: /v1/nps, theme and follow-up reports, CSV exports (scope analytics:read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from npsloop.services.analytics import export, followup_metrics, repository, service
from npsloop.services.analytics.nps import Interval
from npsloop.services.analytics.schemas import (
    GROUP_BY_HELP,
    FollowupReport,
    NpsReport,
    OutcomesReport,
    PropertiesReport,
    ThemeReport,
    check_group_by,
    open_period,
    resolve_period,
)
from npsloop.shared.auth import Principal
from npsloop.shared.clock import Instant
from npsloop.shared.web import ClockDep, DbDep, require

router = APIRouter(tags=["analytics"])

Analyst = Annotated[Principal, Depends(require("analytics:read"))]
From = Annotated[
    Instant | None, Query(alias="from", description="Start (inclusive); naive = UTC; default: to − 90 days")
]
To = Annotated[Instant | None, Query(description="End (exclusive); naive = UTC; default: now")]
ExportFrom = Annotated[Instant | None, Query(alias="from", description="Start (inclusive); naive = UTC")]


@router.get("/v1/nps", response_model=NpsReport, response_model_by_alias=True, response_model_exclude_none=False)
async def get_nps(
    request: Request,
    _: Analyst,
    db: DbDep,
    clock: ClockDep,
    period_from: From = None,
    to: To = None,
    group_by: Annotated[str | None, Query(description=GROUP_BY_HELP)] = None,
    interval: Annotated[Interval | None, Query(description="day | week | month (UTC; weeks start on Monday)")] = None,
    segment: str | None = None,
    touchpoint: str | None = None,
    lifecycle_stage: str | None = None,
    survey_kind: str | None = None,
) -> dict:
    """NPS (−100..100), counts, shares and the 95 % margin of error for a period of answers
    (by ``responded_at``), per group and per interval, with whether each interval's change
    from the previous one is significant. Groups are keyed by the grouping's name."""
    period = resolve_period(period_from, to, clock.now())
    filters = {
        k: v
        for k, v in (
            ("segment", segment),
            ("touchpoint", touchpoint),
            ("lifecycle_stage", lifecycle_stage),
            ("survey_kind", survey_kind),
        )
        if v is not None
    }
    async with db.sessions() as session:
        report = await service.nps_report(
            session, period=period, group_by=check_group_by(group_by), interval=interval, filters=filters
        )
    report["benchmarks"] = [b.model_dump() for b in request.app.state.runtime.policy.benchmarks]
    return report


@router.get("/v1/analytics/properties", response_model=PropertiesReport, response_model_by_alias=True)
async def get_properties(_: Analyst, db: DbDep, clock: ClockDep, period_from: From = None, to: To = None) -> dict:
    """The ``properties`` names seen in the period's responses (the newest 10,000), most common
    first: what ``group_by=properties.<name>`` can split NPS by."""
    period = resolve_period(period_from, to, clock.now())
    async with db.sessions() as session:
        counts = await repository.property_names(session, start=period.start, end=period.end, sample=10_000)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"from": period.start, "to": period.end, "properties": [{"name": n, "responses": c} for n, c in ranked]}


@router.get("/v1/analytics/outcomes", response_model=OutcomesReport, response_model_by_alias=True)
async def get_outcomes(_: Analyst, db: DbDep, clock: ClockDep, period_from: From = None, to: To = None) -> dict:
    """Customers and revenue by NPS category and business outcome (churned, renewed, expanded,
    contracted) for outcomes that occurred in the period: "revenue from detractors who churned"."""
    period = resolve_period(period_from, to, clock.now())
    async with db.sessions() as session:
        return await service.outcomes_report(session, period=period)


@router.get("/v1/analytics/themes", response_model=ThemeReport, response_model_by_alias=True)
async def get_themes(
    _: Analyst, db: DbDep, clock: ClockDep, period_from: From = None, to: To = None, interval: Interval | None = None
) -> dict:
    """Theme counts and shares by category (what detractors talk about versus promoters),
    NPS per theme and, with ``interval``, the trend of each theme. Corrections win."""
    period = resolve_period(period_from, to, clock.now())
    async with db.sessions() as session:
        return await service.theme_report(session, period=period, interval=interval)


@router.get("/v1/analytics/followup", response_model=FollowupReport, response_model_by_alias=True)
async def get_followup(_: Analyst, db: DbDep, clock: ClockDep, period_from: From = None, to: To = None) -> dict:
    """SLA compliance (detractor tasks acknowledged within their SLA), time to first touch
    (median, p90), open tasks by age, the SLA board, recovery rate and outcomes."""
    now = clock.now()
    period = resolve_period(period_from, to, now)
    async with db.sessions() as session:
        return await followup_metrics.followup_report(session, period=period, now=now)


def _csv(rows, name: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/v1/analytics/export/responses.csv", response_class=StreamingResponse)
async def export_responses(_: Analyst, db: DbDep, period_from: ExportFrom = None, to: To = None) -> StreamingResponse:
    """Every response answered in the period (default: all) with its corrected classification, streamed."""
    start, end = open_period(period_from, to)
    return _csv(export.response_rows(db, start=start, end=end), "npsloop-responses.csv")


@router.get("/v1/analytics/export/tasks.csv", response_class=StreamingResponse)
async def export_tasks(_: Analyst, db: DbDep, period_from: ExportFrom = None, to: To = None) -> StreamingResponse:
    """Every follow-up task whose response was received in the period (default: all), streamed."""
    start, end = open_period(period_from, to)
    return _csv(export.task_rows(db, start=start, end=end), "npsloop-tasks.csv")
