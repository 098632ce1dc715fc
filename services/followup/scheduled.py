"""The SLA monitor: warn at ``sla_warning_at`` of the SLA, mark breaches at ``due_at``.

Each transition is a conditional update of stored data in one transaction with its
event, so a restart or a second monitor never warns or breaches a task twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop.services.followup import repository
from npsloop.services.followup.service import emit_task_event, mark_breached, record_task_event
from npsloop.shared import events
from npsloop.shared.clock import Clock
from npsloop.shared.observability import metrics

log = logging.getLogger("npsloop.followup.sla")


@dataclass
class SlaCheck:
    warned: int = 0
    breached: int = 0


async def check_sla(session: AsyncSession, *, clock: Clock) -> SlaCheck:
    now = clock.now()
    result = SlaCheck()
    for task in await repository.due_for_breach(session, now):
        await mark_breached(session, task, now, clock)
        result.breached += 1
    await session.flush()  # the warning query below must see the breaches just marked
    for task in await repository.due_for_warning(session, now):
        task.warned_at = now
        record_task_event(session, task, "sla_warning", now, data={"due_at": task.due_at.isoformat()})
        await emit_task_event(session, events.FOLLOWUP_SLA_WARNING, task, now, clock)
        result.warned += 1
    if result.warned or result.breached:
        metrics.sla_warnings.inc(result.warned)
        log.info("sla check", extra={"warned": result.warned, "breached": result.breached})
    return result
