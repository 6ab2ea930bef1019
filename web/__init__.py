"""Transport only: the FastAPI app, the chat socket, REST routes and the static widget."""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "create_app":
        from web.app import create_app

        return create_app
    raise AttributeError(name)
