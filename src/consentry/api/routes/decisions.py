"""The decision point over HTTP: POST /v1/decisions and /v1/decisions/batch."""

from __future__ import annotations

from fastapi import APIRouter

from consentry.api.deps import ContainerDep, Decider
from consentry.api.problems import Problem
from consentry.api.schemas import DecisionBatchIn, DecisionBatchOut, DecisionIn, DecisionOut
from consentry.domain.decisions import Decision, DecisionRequest

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


@router.post("/v1/decisions", response_model=DecisionOut)
def post_decision(body: DecisionIn, _: Decider, container: ContainerDep) -> DecisionOut:
    decision = container.consents.decide(_request(body))
    container.metrics.decision(decision)
    return _out(decision)


@router.post("/v1/decisions/batch", response_model=DecisionBatchOut)
def post_decisions(body: DecisionBatchIn, _: Decider, container: ContainerDep) -> DecisionBatchOut:
    limit = container.settings.max_batch
    if len(body.checks) > limit:
        raise Problem(413, f"at most {limit} checks per batch", code="batch_too_large")
    decisions = container.consents.decide_many([_request(c) for c in body.checks])
    for decision in decisions:
        container.metrics.decision(decision)
    return DecisionBatchOut(results=[_out(d) for d in decisions])
