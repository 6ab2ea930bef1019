"""Signed, expiring tokens: shoppers reach their own conversation, agents the console.

The two kinds are signed with different salts, so neither can stand in for the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "aisle.shopper"
AGENT_SALT = "aisle.agent"


class TokenError(ValueError):
    """The token is missing, tampered with or expired."""


@dataclass(frozen=True, slots=True)
class ShopperClaims:
    shopper_id: str


@dataclass(frozen=True, slots=True)
class AgentClaims:
    agent_id: int
    name: str
    role: str


class _Signer:
    def __init__(self, secret: str, ttl_s: int, salt: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=salt)
        self.ttl_s = ttl_s

    def _load(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise TokenError("missing session token")
        try:
            data = self._serializer.loads(token, max_age=self.ttl_s)
        except SignatureExpired as exc:
            raise TokenError("session token expired") from exc
        except BadSignature as exc:
            raise TokenError("invalid session token") from exc
        if not isinstance(data, dict):
            raise TokenError("invalid session token")
        return data


class TokenSigner(_Signer):
    """Shopper tokens."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        super().__init__(secret, ttl_s, SALT)

    def issue(self, shopper_id: str) -> str:
        return self._serializer.dumps({"sid": shopper_id})

    def verify(self, token: str | None) -> ShopperClaims:
        data = self._load(token)
        if not isinstance(data.get("sid"), str):
            raise TokenError("invalid session token")
        return ShopperClaims(data["sid"])


class AgentTokenSigner(_Signer):
    """Agent tokens: they carry the agent's role."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        super().__init__(secret, ttl_s, AGENT_SALT)

    def issue(self, agent_id: int, name: str, role: str) -> str:
        return self._serializer.dumps({"aid": agent_id, "name": name, "role": role})

    def verify(self, token: str | None) -> AgentClaims:
        data = self._load(token)
        if not (isinstance(data.get("aid"), int) and isinstance(data.get("name"), str)
                and isinstance(data.get("role"), str)):
            raise TokenError("invalid session token")
        return AgentClaims(data["aid"], data["name"], data["role"])
