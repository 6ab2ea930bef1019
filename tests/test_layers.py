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
