"""Dependencies point one way: retrieval <- bot <- finetune, and retrieval/bot <- web; nothing imports web."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAY_NOT_IMPORT = {
    "retrieval": {"bot", "finetune", "web"},
    "bot": {"finetune", "web"},
    "finetune": {"web"},
    "web": {"finetune"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a file imports, anywhere in it (lazy imports inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_no_module_imports_against_the_dependency_direction(package: str) -> None:
    wrong = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & MAY_NOT_IMPORT[package])
             for path in sorted((ROOT / package).rglob("*.py"))}
    assert {path: names for path, names in wrong.items() if names} == {}


def reaches_into_others(path: Path) -> list[str]:
    """``obj._name`` on anything but ``self``/``cls``/``super()``, and ``from m import _name``: another
    module's private parts."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_no_module_uses_another_modules_private_names(package: str) -> None:
    found = {str(path.relative_to(ROOT)): reaches_into_others(path) for path in sorted((ROOT / package).rglob("*.py"))}
    assert {path: uses for path, uses in found.items() if uses} == {}
