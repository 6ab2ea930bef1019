"""Typed dependencies: routes get state through these aliases, never build it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from web.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.aisle  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with state.factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
