"""Fixtures for SDK tests: a live server on the parametrised database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consentry.bootstrap import Container
from sdk.live import LiveServer, ServerThread


@pytest.fixture
def live_server(container: Container) -> Iterator[LiveServer]:
    thread = ServerThread(container)
    key = container.keys.create(["decide"], name="sdk-test")
    try:
        yield LiveServer(thread.url, container, key, thread)
    finally:
        thread.stop()
