"""A vLLM server we start, supervise and stop ourselves (when AISLE_VLLM_URL is unset)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.llm.base import LLMUnavailable


@dataclass(frozen=True)
class ManagedVLLMConfig:
    """How to launch the server."""

    model_dir: Path = field(metadata={"help": "Prepared generator directory."})
    served_model_name: str = field(default="aisle-base", metadata={"help": "Name clients request."})
    port: int = field(default=8100, metadata={"help": "Port on 127.0.0.1."})
    log_path: Path = field(default=Path("var/logs/vllm.log"), metadata={"help": "Server log file."})
    kvcache_gib: int = field(default=2, metadata={"help": "VLLM_CPU_KVCACHE_SPACE (CPU build)."})
    max_model_len: int = field(default=2048, metadata={"help": "Context length."})
    enable_lora: bool = field(default=False, metadata={"help": "Serve LoRA adapters and runtime loading."})
    max_lora_rank: int = field(default=16, metadata={"help": "Largest adapter rank."})
    startup_timeout_s: float = field(default=240.0, metadata={"help": "Wait for /health."})
    nice: int = field(default=10, metadata={"help": "CPU niceness of the server (0 = the app's own)."})

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if self.startup_timeout_s <= 0:
            raise ValueError("startup_timeout_s must be positive")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"nice must be between 0 and 19, got {self.nice}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            "--served-model-name", self.served_model_name,
            "--dtype", "bfloat16",
            "--max-model-len", str(self.max_model_len),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--disable-uvicorn-access-log",
        ]
        if self.enable_lora:
            cmd += ["--enable-lora", "--max-lora-rank", str(self.max_lora_rank)]
        return cmd


class ManagedVLLM:
    """Start with :meth:`start`, stop with :meth:`stop`; the log goes to ``config.log_path``."""

    def __init__(self, config: ManagedVLLMConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

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
        with self.config.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.config.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LLMUnavailable(
                    f"vLLM exited with code {self.process.returncode} during startup; "
                    f"log {self.config.log_path}:\n{self._log_tail()}"
                )
            try:
                if httpx.get(f"{self.config.url}/health", timeout=2).status_code == 200:
                    self._warm_up(deadline)
                    return self.config.url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
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
            self.stop()
            raise LLMUnavailable(
                f"vLLM answered /health but not a first completion ({exc}); log {self.config.log_path}:\n"
                f"{self._log_tail()}"
            ) from exc

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 15.0) -> None:
        """Stop the server and its engine processes (SIGTERM, then SIGKILL)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
