"""REST routes: sessions, health, the storefront page and product data for it."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from bot import conversations
from bot.turn_events import product_card
from web.deps import StateDep
from web.state import AppState

router = APIRouter()
STATIC = Path(__file__).parent / "static"


class SessionRequest(BaseModel):
    shopper_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[\w.@:-]+$")
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f<>]+$",
                             description="the signed-in shopper's name, as the storefront knows it: shown to "
                                         "agents, scrubbed from training exports")


class SessionResponse(BaseModel):
    token: str
    shopper_id: str
    expires_in: int


@router.post("/api/session", responses={429: {"description": "Too many new sessions from this address"}})
async def create_session(state: StateDep, request: Request, body: SessionRequest | None = None) -> SessionResponse:
    """Issue a signed shopper token; without a shopper id an anonymous one is made."""
    wait = state.connections.session_allowed(request.client.host if request.client else "unknown")
    if wait is not None:
        raise HTTPException(429, f"Too many new sessions from this address; try again in {wait:.0f} s.",
                            headers={"Retry-After": str(max(1, round(wait)))})
    shopper_id = (body.shopper_id if body else None) or f"anon-{uuid.uuid4().hex[:16]}"
    if body is not None and body.name is not None:
        await asyncio.to_thread(_name, state, shopper_id, body.name)
    return SessionResponse(token=state.signer.issue(shopper_id), shopper_id=shopper_id,
                           expires_in=state.settings.session_ttl_s)


def _name(state: AppState, shopper_id: str, name: str) -> None:
    with state.factory() as session, session.begin():
        conversations.name_shopper(session, external_id=shopper_id, name=name)


@router.get("/healthz")
async def healthz(state: StateDep) -> JSONResponse:
    """Readiness of the database, the index and the LLM; 503 when any is down."""
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db_ok = True
    except Exception:
        db_ok = False
    llm_ok = await state.llm.health()
    index_ok = len(state.index) > 0
    body = {
        "status": "ok" if db_ok and llm_ok and index_ok else "degraded",
        "sockets": state.connections.open_sockets,
        "database": {"ok": db_ok, "backend": state.engine.url.get_backend_name()},
        "index": {"ok": index_ok, "products": len(state.index)},
        "llm": {"ok": llm_ok, "backend": state.llm.name, "model": state.llm.model_name,
                "deadlines": state.deadlines()},  # first token, token gap, and the probe they rest on
        "adapter": state.adapters.status(),
    }
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


@router.get("/api/products")
async def products(state: StateDep, limit: int = Query(12, ge=1, le=60)) -> list[dict[str, object]]:
    """A spread of in-stock products across categories, for the storefront page."""
    seen: dict[str, dict[str, object]] = {}
    for doc in state.index.docs:
        if doc is not None and doc.stock > 0 and doc.category not in seen:
            seen[doc.category] = product_card(doc)
        if len(seen) >= limit:
            break
    return list(seen.values())


@router.get("/img/{sku}.svg")
async def product_image(state: StateDep, sku: str) -> Response:
    """A drawn placeholder image for a product (no remote images)."""
    doc = state.index.get(sku)
    if doc is None:
        raise HTTPException(404, f"unknown SKU {sku!r}")
    hue = int(hashlib.sha256(doc.category.encode()).hexdigest()[:2], 16) * 360 // 256
    initials = escape("".join(w[0] for w in doc.category.split() if w[0].isalnum())[:2].upper())
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120" viewBox="0 0 160 120">'
        f'<rect width="160" height="120" rx="12" fill="hsl({hue},55%,88%)"/>'
        f'<text x="80" y="72" font-family="sans-serif" font-size="36" text-anchor="middle" '
        f'fill="hsl({hue},45%,35%)">{initials}</text></svg>'
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/", include_in_schema=False)
async def storefront() -> FileResponse:
    return FileResponse(STATIC / "store.html")


@router.get("/widget.js", include_in_schema=False)
async def widget_loader() -> FileResponse:
    return FileResponse(STATIC / "widget.js", media_type="text/javascript")
