"""The demo (SQLite file, the demo catalogue and customers) served by uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.http.app import create_app
from consentry.services.demo import seed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_container(container: Container) -> Iterator[str]:
    """Serve ``container``'s app on a free local port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(container),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="none",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the page's server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_demo(folder: Path) -> Iterator[str]:
    """The demo with its customers seeded, on SQLite in ``folder``."""
    settings = Settings(database_url=f"sqlite:///{folder / 'consentry.db'}", demo=True)
    container = bootstrap(settings)
    seed(container)
    try:
        with serve_container(container) as url:
            yield url
    finally:
        container.close()
