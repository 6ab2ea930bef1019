"""Signed, expiring shopper tokens."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "aisle.shopper"


class TokenError(ValueError):
    """The token is missing, tampered with or expired."""


@dataclass(frozen=True, slots=True)
class ShopperClaims:
    shopper_id: str


class TokenSigner:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.ttl_s = ttl_s

    def issue(self, shopper_id: str) -> str:
        return self._serializer.dumps({"sid": shopper_id})

    def verify(self, token: str | None) -> ShopperClaims:
        if not token:
            raise TokenError("missing session token")
        try:
            data = self._serializer.loads(token, max_age=self.ttl_s)
        except SignatureExpired as exc:
            raise TokenError("session token expired") from exc
        except BadSignature as exc:
            raise TokenError("invalid session token") from exc
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            raise TokenError("invalid session token")
        return ShopperClaims(data["sid"])
