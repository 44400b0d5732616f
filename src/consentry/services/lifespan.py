"""Background work that runs for an application's lifetime (the embedded relay, periodic
checkpoints): started with the application, stopped when it shuts down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar


class _Application(Protocol):
    router: Any  # a Starlette application's router (its lifespan_context is wrapped)


App = TypeVar("App", bound=_Application)


class Background(Protocol):
    def stop(self) -> None: ...


def running_beside(app: App, begin: Callable[[], Background | None]) -> App:
    """``app`` (a Starlette application) calling ``begin`` as it starts (which starts the work,
    or nothing: None) and stopping that work as it shuts down."""
    router = app.router
    inner = router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        running = begin()
        try:
            async with inner(application) as state:
                yield state
        finally:
            if running is not None:
                running.stop()

    wrapped: Callable[[Any], AbstractAsyncContextManager[Any]] = lifespan
    router.lifespan_context = wrapped
    return app
