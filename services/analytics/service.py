"""NPS and theme reports. Read-only: nothing here writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.analytics import repository
from npsloop.services.analytics.nps import (
    Interval,
    Tally,
    bucket_start,
    buckets,
    category_of,
    change_between,
    count_buckets,
    next_bucket,
)
from npsloop.services.analytics.schemas import MAX_BUCKETS, OUTCOMES, Period
from npsloop.services.classifier import repository as classifier_repository
from npsloop.shared.problems import UnprocessableContent

CATEGORIES = ("promoter", "passive", "detractor")


def _check_buckets(period: Period, interval: Interval | None) -> list[date]:
    if interval is None:
        return []
    if count_buckets(period.start, period.end, interval) > MAX_BUCKETS:
        raise UnprocessableContent(
            f"the period spans more than {MAX_BUCKETS} intervals of one {interval}",
            errors=[{"field": "interval", "message": "too many intervals for this period"}],
        )
    return buckets(period.start, period.end, interval)


async def _rows_with_themes(
    session: AsyncSession, period: Period, filters: dict[str, str]
) -> AsyncIterator[tuple[Any, list[str]]]:
    """Each response row with its theme ids; people's corrections win over the model."""
    async for page in repository.scored_responses(session, start=period.start, end=period.end, filters=filters):
        corrections = await classifier_repository.effective_corrections(session, [row.id for row in page])
        for row in page:
            corrected = corrections.get(row.id)
            if corrected is not None and corrected.themes is not None:
                themes = list(corrected.themes)
            else:
                themes = [t["id"] for t in (row.themes or []) if isinstance(t, dict) and "id" in t]
            yield row, themes


def _group_keys(row: Any, themes: list[str], group_by: str | None) -> list[Any]:
    if group_by is None:
        return []
    if group_by == "theme":
        return themes
    if group_by.startswith("properties."):
        return [(row.properties or {}).get(group_by.removeprefix("properties."))]
    return [getattr(row, group_by)]


def _series(tallies: dict[date, Tally], bucket_list: list[date], interval: Interval) -> list[dict[str, Any]]:
    series, previous = [], None
    for start in bucket_list:
        tally = tallies.get(start, Tally())
        point = {
            "start": start,
            "end": next_bucket(start, interval),
            **tally.as_dict(),
            "change": change_between(previous, tally) if previous is not None else None,
        }
        series.append(point)
        previous = tally
    return series


async def nps_report(
    session: AsyncSession, *, period: Period, group_by: str | None, interval: Interval | None, filters: dict[str, str]
) -> dict[str, Any]:
    """NPS overall and per group, optionally per interval with the change's significance.

    A response counts once per group it belongs to: with ``group_by=theme`` a comment
    about pricing and support counts in both, and responses without themes in none.
    """
    bucket_list = _check_buckets(period, interval)
    overall, overall_by_bucket = Tally(), defaultdict(Tally)
    groups: dict[Any, Tally] = defaultdict(Tally)
    groups_by_bucket: dict[Any, dict[date, Tally]] = defaultdict(lambda: defaultdict(Tally))
    async for row, themes in _rows_with_themes(session, period, filters):
        category = category_of(row.score)
        bucket = bucket_start(row.responded_at, interval) if interval else None
        overall.add(category)
        if bucket is not None:
            overall_by_bucket[bucket].add(category)
        for key in dict.fromkeys(_group_keys(row, themes, group_by)):
            groups[key].add(category)
            if bucket is not None:
                groups_by_bucket[key][bucket].add(category)

    def shaped(tally: Tally, by_bucket: dict[date, Tally], key: dict[str, Any]) -> dict[str, Any]:
        out = {**key, **tally.as_dict()}
        if interval:
            out["intervals"] = _series(by_bucket, bucket_list, interval)
        return out

    ordered = sorted(groups.items(), key=lambda item: (-item[1].total, str(item[0])))
    report_groups = (
        [shaped(t, groups_by_bucket[k], {group_by: k}) for k, t in ordered]
        if group_by
        else [shaped(overall, overall_by_bucket, {})]
    )
    return {
        "from": period.start,
        "to": period.end,
        "group_by": group_by,
        "interval": interval,
        "overall": shaped(overall, overall_by_bucket, {}),
        "groups": report_groups,
    }


async def theme_report(session: AsyncSession, *, period: Period, interval: Interval | None) -> dict[str, Any]:
    """What each category talks about: theme counts and shares, NPS per theme, trend per theme.

    Shares are of responses *with a comment*: a bare score cannot mention anything.
    """
    bucket_list = _check_buckets(period, interval)
    responses = dict.fromkeys(CATEGORIES, 0)
    commented = dict.fromkeys(CATEGORIES, 0)
    commented_by_bucket: dict[date, int] = defaultdict(int)
    by_theme: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CATEGORIES, 0))
    theme_by_bucket: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    async for row, themes in _rows_with_themes(session, period, {}):
        category = category_of(row.score)
        responses[category] += 1
        if not (row.comment or themes):
            continue
        commented[category] += 1
        bucket = bucket_start(row.responded_at, interval) if interval else None
        if bucket is not None:
            commented_by_bucket[bucket] += 1
        for theme in dict.fromkeys(themes):
            by_theme[theme][category] += 1
            if bucket is not None:
                theme_by_bucket[theme][bucket] += 1
    all_commented = sum(commented.values())
    themes_out = []
    for theme, counts in by_theme.items():
        total = sum(counts.values())
        tally = Tally(promoters=counts["promoter"], passives=counts["passive"], detractors=counts["detractor"])
        stats: dict[str, Any] = {
            "id": theme,
            "total": total,
            "share": share(total, all_commented),
            "nps": tally.as_dict()["nps"],
            "by_category": {c: {"count": counts[c], "share": share(counts[c], commented[c])} for c in CATEGORIES},
        }
        if interval:
            stats["trend"] = [
                {
                    "start": b,
                    "count": theme_by_bucket[theme].get(b, 0),
                    "share": share(theme_by_bucket[theme].get(b, 0), commented_by_bucket.get(b, 0)),
                }
                for b in bucket_list
            ]
        themes_out.append(stats)
    themes_out.sort(key=lambda t: (-t["total"], t["id"]))
    return {
        "from": period.start,
        "to": period.end,
        "interval": interval,
        "responses": responses,
        "commented": commented,
        "themes": themes_out,
    }


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def outcomes_report(session: AsyncSession, *, period: Period) -> dict[str, Any]:
    """Customers and revenue by NPS category and business outcome, for outcomes in the period.

    Each outcome takes the category of the latest answer on or before its day: by the
    customer when the outcome names one, else by anyone on the account.
    """
    start_day, end_day = period.start.date(), (period.end - timedelta(microseconds=1)).date()
    outcomes = await repository.business_outcomes_between(session, start=start_day, end=end_day)
    answers = await repository.answers_of(
        session,
        customer_ids=sorted({o.customer_id for o in outcomes if o.customer_id}),
        account_ids=sorted({o.account_id for o in outcomes if o.account_id and not o.customer_id}),
        before=datetime.combine(end_day + timedelta(days=1), time(), tzinfo=UTC),
    )
    by_customer: dict[str, list[tuple[datetime, int]]] = {}
    by_account: dict[str, list[tuple[datetime, int]]] = {}
    for customer_id, account_id, score, responded_at in answers:
        by_customer.setdefault(customer_id, []).append((responded_at, score))
        if account_id:
            by_account.setdefault(account_id, []).append((responded_at, score))
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for outcome in outcomes:
        history = (
            by_customer.get(outcome.customer_id or "", [])
            if outcome.customer_id
            else by_account.get(outcome.account_id or "", [])
        )
        day_end = datetime.combine(outcome.occurred_on + timedelta(days=1), time(), tzinfo=UTC)
        earlier = [answer for answer in history if answer[0] < day_end]
        category = category_of(max(earlier)[1]) if earlier else "unknown"
        cell = cells.setdefault(
            (category, outcome.outcome), {"who": set(), "outcomes": 0, "revenue": 0.0, "currencies": set()}
        )
        cell["who"].add(outcome.customer_id or f"account:{outcome.account_id}")
        cell["outcomes"] += 1
        cell["revenue"] += outcome.revenue or 0.0
        if outcome.currency:
            cell["currencies"].add(outcome.currency)
    categories = []
    for category in ("promoter", "passive", "detractor", "unknown"):
        row = {}
        for name in OUTCOMES:
            found = cells.get((category, name))
            row[name] = {
                "customers": len(found["who"]) if found else 0,
                "outcomes": found["outcomes"] if found else 0,
                "revenue": round(found["revenue"], 2) if found else 0.0,
                "currencies": sorted(found["currencies"]) if found else [],
            }
        categories.append({"category": category, "outcomes": row})
    return {"from": period.start, "to": period.end, "categories": categories}
