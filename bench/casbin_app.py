"""The HTTP peer: a FastAPI service answering POST /v1/decisions with pycasbin.

Same request and response bodies as consentry's endpoint, a Bearer key checked against an
in-memory set, the workload's policy loaded at start. Run by ``bench/http_decisions.py`` as
``uvicorn --factory casbin_app:create`` with CONSENTRY_BENCH_WORKLOAD pointing to the workload.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from _peers import CASBIN_MODEL
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field


class DecisionIn(BaseModel):
    subject: str = Field(min_length=1, max_length=200)
    purpose: str
    categories: list[str] = Field(min_length=1, max_length=50)
    recipient: str | None = None


class DecisionOut(BaseModel):
    allowed: bool
    reason: str
    permission: str | None = None


class DecisionBatchIn(BaseModel):
    checks: list[DecisionIn] = Field(min_length=1, max_length=1000)


class DecisionBatchOut(BaseModel):
    results: list[DecisionOut]


def create() -> FastAPI:
    import casbin
    from casbin.model import FastModel

    with open(os.environ["CONSENTRY_BENCH_WORKLOAD"]) as f:
        data: dict[str, Any] = json.load(f)
    order = [1, 2, 3]
    model = FastModel(order)
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.FastEnforcer(model, cache_key_order=order)
    enforcer.add_policies(data["rules"])
    enforcer.add_named_grouping_policies("g", data["grouping"])
    keys = {f"Bearer {data['key']}"}
    app = FastAPI(title="casbin peer")

    def answer(body: DecisionIn) -> DecisionOut:
        recipient = body.recipient or ""
        allowed = all(
            enforcer.enforce(body.subject, body.purpose, c, recipient) for c in body.categories
        )
        return DecisionOut(allowed=allowed, reason="casbin")

    @app.post("/v1/decisions", response_model=DecisionOut)
    async def decide(body: DecisionIn, authorization: Annotated[str, Header()] = "") -> DecisionOut:
        if authorization not in keys:
            raise HTTPException(401, "unknown key")
        return answer(body)

    @app.post("/v1/decisions/batch", response_model=DecisionBatchOut)
    async def decide_many(
        body: DecisionBatchIn, authorization: Annotated[str, Header()] = ""
    ) -> DecisionBatchOut:
        if authorization not in keys:
            raise HTTPException(401, "unknown key")
        return DecisionBatchOut(results=[answer(check) for check in body.checks])

    return app
