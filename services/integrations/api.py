"""``POST /v1/integrations/formbricks``: Formbricks' webhook, signed instead of keyed."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from npsloop.services.integrations import service
from npsloop.services.integrations.schemas import TEST_EVENT, FormbricksAck, FormbricksWebhook
from npsloop.shared.observability import metrics
from npsloop.shared.problems import PROBLEM_JSON, BadRequest, NotFound, UnprocessableContent
from npsloop.shared.web import ClockDep, DbDep

log = logging.getLogger("npsloop.integrations")
router = APIRouter(prefix="/v1/integrations", tags=["integrations"])

_PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


@router.post(
    "/formbricks",
    response_model=FormbricksAck,
    responses={
        400: {"description": "The body is not JSON", "content": _PROBLEM},
        401: {"description": "Missing or wrong Standard Webhooks signature", "content": _PROBLEM},
        404: {"description": "integrations.formbricks is not in the policy file", "content": _PROBLEM},
        422: {"description": "A mapped survey's answer that cannot be stored", "content": _PROBLEM},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FormbricksWebhook.model_json_schema()}},
        }
    },
)
async def formbricks_webhook(request: Request, db: DbDep, clock: ClockDep) -> Any:
    """Formbricks' webhook (``responseCreated``, ``responseUpdated``, ``responseFinished``),
    verified with its Standard Webhooks signature against ``integrations.formbricks.secret``.

    The survey's NPS question and comment are mapped by the policy; a survey or answer
    npsloop does not take is acknowledged (200, ``ignored``) so Formbricks does not report
    a failure. Events for the same Formbricks response update one npsloop response.
    """
    config = request.app.state.runtime.policy.integrations.formbricks
    if config is None:
        raise NotFound("the Formbricks integration is off: add integrations.formbricks to the policy file")
    body = await request.body()
    try:
        document = json.loads(body)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if document == {"event": TEST_EVENT}:
        # Formbricks pings a webhook before it saves it, signed with a secret it has not shown
        # anyone yet; the ping carries no answer, so it is acknowledged unverified.
        log.info("formbricks test ping acknowledged")
        return FormbricksAck(status="ignored", reason="test ping")
    service.verify_signature(config, request.headers, body, now=clock.now())
    try:
        webhook = FormbricksWebhook.model_validate(document)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise UnprocessableContent("not a Formbricks webhook body", errors=errors) from None
    about = {
        "webhook_event": webhook.event,
        "webhook_id": request.headers.get("webhook-id"),
        "formbricks_response_id": webhook.data.id if webhook.data else None,
        "formbricks_survey_id": webhook.data.surveyId if webhook.data else None,
    }
    try:
        response = service.response_for(webhook, config)
    except UnprocessableContent as exc:
        log.warning("formbricks answer refused", extra={**about, "reason": exc.detail})
        raise
    if isinstance(response, service.Ignored):
        log.info("formbricks webhook ignored", extra={**about, "reason": response.reason})
        return FormbricksAck(status="ignored", reason=response.reason)
    accepted = await service.store(db, response, clock=clock)
    if not accepted.duplicate:
        metrics.responses_ingested.inc()
    log.info(
        "formbricks answer stored",
        extra={**about, "response_id": accepted.id, "duplicate": accepted.duplicate},
    )
    return FormbricksAck(status="accepted", id=accepted.id, duplicate=accepted.duplicate)
