"""The decision point over HTTP: POST /v1/decisions and /v1/decisions/batch.

Answered from the in-process replica (``container.replica``) on the event loop; what it cannot
answer (not loaded yet, device data, jurisdiction defaults) goes to the database in a thread.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from consentry.api.schemas import DecisionBatchIn, DecisionBatchOut, DecisionIn, DecisionOut
from consentry.bootstrap import Container
from consentry.domain.decisions import Decision, DecisionRequest
from consentry.http.deps import Decider
from consentry.http.problems import Problem

router = APIRouter(tags=["decisions"])


def _request(body: DecisionIn) -> DecisionRequest:
    return DecisionRequest(
        subject=body.subject,
        purpose=body.purpose,
        categories=tuple(body.categories),
        recipient=body.recipient,
        device=body.device,
    )


def _out(decision: Decision) -> DecisionOut:
    return DecisionOut(
        allowed=decision.allowed, reason=decision.reason.value, permission=decision.permission
    )


async def _decide(container: Container, requests: list[DecisionRequest]) -> list[Decision]:
    """Each answer from the in-process replica; what it cannot answer (not loaded yet, device
    data, jurisdiction defaults) from the database, in a thread. Each decision is counted."""
    now = container.consents.clock()
    answers = [container.replica.decide(r, now) for r in requests]
    missing = [i for i, a in enumerate(answers) if a is None]
    if missing:
        found = await run_in_threadpool(
            container.decisions.decide_many, [requests[i] for i in missing]
        )
        for i, decision in zip(missing, found, strict=True):
            answers[i] = decision
    decisions = [a for a in answers if a is not None]
    for decision in decisions:
        container.metrics.decision(decision)
    return decisions


@router.post("/v1/decisions", response_model=DecisionOut)
async def post_decision(body: DecisionIn, _: Decider, http: Request) -> DecisionOut:
    # The container straight from the app: a sync dependency would cost a thread hop.
    container: Container = http.app.state.container
    (decision,) = await _decide(container, [_request(body)])
    return _out(decision)


@router.post("/v1/decisions/batch", response_model=DecisionBatchOut)
async def post_decisions(body: DecisionBatchIn, _: Decider, http: Request) -> DecisionBatchOut:
    container: Container = http.app.state.container
    limit = container.settings.max_batch
    if len(body.checks) > limit:
        raise Problem(413, f"at most {limit} checks per batch", code="batch_too_large")
    decisions = await _decide(container, [_request(c) for c in body.checks])
    return DecisionBatchOut(results=[_out(d) for d in decisions])
