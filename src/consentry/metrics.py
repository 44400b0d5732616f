"""Prometheus metrics, one registry per container (so tests and processes do not share)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from consentry.domain.decisions import Decision


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "consentry_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "consentry_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "consentry_decisions",
            "Decisions by outcome and reason",
            ["allowed", "reason"],
            registry=self.registry,
        )

        self.violations = Counter(
            "consentry_use_violations",
            "Reported uses of personal data that the subject's choices did not allow",
            ["purpose"],
            registry=self.registry,
        )

    def violation(self, purpose: str) -> None:
        self.violations.labels(purpose).inc()

    def decision(self, decision: Decision) -> None:
        self.decisions.labels(str(decision.allowed).lower(), decision.reason.value).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
