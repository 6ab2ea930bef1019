"""Errors a client caused: each carries the ``code`` the sockets send back in an ``error`` frame."""

from __future__ import annotations


class RequestError(ValueError):
    """A request that cannot be served as asked; ``code`` is for clients, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
