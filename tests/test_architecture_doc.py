"""docs/architecture.md lists what clients and operators rely on; each list must match the code both ways."""

from __future__ import annotations

import argparse
import re
import typing
from pathlib import Path

from bot.cli import build_parser
from bot.config import Settings
from web import protocol

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
README = REPO / "README.md"
CODE = ("bot", "retrieval", "finetune", "web")


def section(title: str, text: str | None = None) -> str:
    """The text under a ``## title`` heading of the architecture document, up to the next one."""
    text = DOC.read_text() if text is None else text
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/architecture.md has no '## {title}' section"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("| ---")][1:]


def ticked(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def documented_events(title: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"client": set(), "server": set()}
    for direction, kind, *_ in table_rows(section(title)):
        out[direction] |= ticked(kind)
    return out


def frame_types(union: object) -> set[str]:
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in typing.get_args(union)}


def outbound_types() -> set[str]:
    inbound = set(typing.get_args(protocol.ShopperFrame)) | set(typing.get_args(protocol.AgentFrame))
    found = set()
    for obj in vars(protocol).values():
        if isinstance(obj, type) and issubclass(obj, protocol._Frame) and obj not in inbound \
                and "type" in obj.model_fields and obj.model_fields["type"].default is not None:
            found.add(obj.model_fields["type"].default)
    return found


def test_the_shopper_socket_events_are_the_documented_ones() -> None:
    doc = documented_events("The shopper WebSocket `/ws/chat`")
    assert doc["client"] == frame_types(protocol.ShopperFrame)


def test_the_agent_socket_events_are_the_documented_ones() -> None:
    doc = documented_events("The agent WebSocket `/ws/agent`")
    assert doc["client"] == frame_types(protocol.AgentFrame)
    shopper = documented_events("The shopper WebSocket `/ws/chat`")
    assert doc["server"] | shopper["server"] == outbound_types()


def test_the_http_routes_are_the_documented_ones(tmp_path: Path) -> None:
    from fastapi.routing import APIRoute, APIWebSocketRoute
    from starlette.routing import Mount

    from web.app import create_app

    app = create_app(Settings(home=tmp_path))
    served = set()
    for route in app.routes:
        if isinstance(route, APIRoute):
            served |= {f"{m} {route.path}" for m in route.methods if m != "HEAD"}
        elif isinstance(route, APIWebSocketRoute):
            served.add(f"WS {route.path}")
        elif isinstance(route, Mount):
            served.add(f"GET {route.path}")
    served -= {"GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc"}  # FastAPI's own
    documented = {cell for row in table_rows(section("HTTP routes")) for cell in ticked(row[0])}
    assert documented == served


def cli_commands() -> set[str]:
    """Every command path of `aisle`, with a positional's choices spelled out (``aisle bench chat``)."""
    out: set[str] = set()

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            for name, child in subs[0].choices.items():
                walk(child, [*path, name])
            return
        named = [a for a in parser._actions if not a.option_strings and a.choices]
        out.update(" ".join(["aisle", *path, c]) for c in named[0].choices) if named else \
            out.add(" ".join(["aisle", *path]))

    walk(build_parser(), [])
    return out


def documented_commands(text: str) -> set[str]:
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block
    out = set()
    for line in block.group(1).splitlines():
        if not line.startswith("aisle "):
            continue
        parts = line.split("#")[0].split(" | ")
        words: list[str] = []
        for w in parts[0].split():
            if not re.fullmatch(r"[a-z][a-z-]*", w):
                break
            words.append(w)
        out.add(" ".join(words))
        for alt in parts[1:]:  # "aisle adapters list | promote NAME | retire NAME"
            if re.fullmatch(r"[a-z][a-z-]*", alt.split()[0]):
                out.add(" ".join([*words[:-1], alt.split()[0]]))
    return out


def test_every_cli_command_is_documented_and_every_documented_one_exists() -> None:
    assert documented_commands(section("Command line")) == cli_commands()


def settings_in_code() -> set[str]:
    names = {f"AISLE_{name.upper()}" for name in Settings.model_fields}
    for package in CODE:  # the few read straight from the environment (a CLI prompt's answer)
        for path in (REPO / package).rglob("*.py"):
            names |= set(re.findall(r"environ(?:\.get)?\(\s*\"(AISLE_[A-Z0-9_]+)\"", path.read_text()))
    return names


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    documented = set(re.findall(r"`(AISLE_[A-Z0-9_]+)`", section("Settings")))
    assert documented == settings_in_code()


def test_the_readme_names_only_real_settings_and_links_the_architecture_not_shared() -> None:
    readme = README.read_text()
    assert set(re.findall(r"\b(AISLE_[A-Z0-9_]+)\b", readme)) <= settings_in_code()
    assert "(docs/architecture.md)" in readme
    assert "../shared/ARCHITECTURE" not in readme and "ARCHITECTURE.md" not in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / link).is_file(), link
