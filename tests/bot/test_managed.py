"""The managed vLLM server leaves no process behind: not on a failed start, an interrupt or a crash.

A stand-in server (a Python script that starts one child, as vLLM starts its engine)
replaces vLLM's command line; what is under test is the process handling.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.llm.base import LLMUnavailable
from bot.llm.managed import ManagedVLLM, ManagedVLLMConfig, free_port

SERVER = """
import subprocess, sys, time
engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("engine", engine.pid, flush=True)
if sys.argv[1] == "crash":
    time.sleep(0.5)
    sys.exit(3)
time.sleep(120)
"""


@dataclass(frozen=True)
class StandIn(ManagedVLLMConfig):
    mode: str = "hang"

    def command(self) -> list[str]:
        return [sys.executable, "-c", SERVER, self.mode]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; nobody may be left to reap it in a container


def pids(log: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("engine ")] if log.exists() else []
        if lines:
            return [int(lines[-1].split()[1])]
        time.sleep(0.05)
    raise AssertionError(f"the stand-in never started: {log.read_text() if log.exists() else '(no log)'}")


def gone(pid: int, within_s: float = 5) -> bool:
    deadline = time.monotonic() + within_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.fixture(autouse=True)
def any_model_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.model_store.check_generator", lambda _: None)


def server(tmp_path: Path, mode: str, timeout_s: float = 30) -> tuple[ManagedVLLM, Path]:
    log = tmp_path / "vllm.log"
    config = StandIn(model_dir=tmp_path, port=free_port(), log_path=log, startup_timeout_s=timeout_s, nice=0,
                     mode=mode)
    return ManagedVLLM(config), log


def test_a_server_never_healthy_is_stopped_with_its_engine(tmp_path: Path) -> None:
    managed, log = server(tmp_path, "hang", timeout_s=2)
    with pytest.raises(LLMUnavailable, match="not healthy after 2s"):
        managed.start()
    assert all(gone(pid) for pid in pids(log)) and not managed.running


def test_an_interrupt_during_startup_stops_the_server_and_its_engine(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    managed, log = server(tmp_path, "hang")

    def health(url: str, **_: object) -> httpx.Response:
        pids(log)  # once the engine is up, the shopper's Ctrl-C (or make run's SIGTERM) arrives
        raise KeyboardInterrupt

    monkeypatch.setattr(httpx, "get", health)
    with pytest.raises(KeyboardInterrupt):
        managed.start()
    assert all(gone(pid) for pid in pids(log)) and not managed.running


def test_a_crashed_server_leaves_no_engine_behind(tmp_path: Path) -> None:
    managed, log = server(tmp_path, "crash")
    with pytest.raises(LLMUnavailable, match="exited with code 3"):
        managed.start()
    (engine,) = pids(log)
    assert gone(engine), "the engine of a server that crashed kept running"


def test_stopped_from_another_thread_mid_startup_it_stops_and_says_so(tmp_path: Path) -> None:
    managed, log = server(tmp_path, "hang")
    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(managed.start)
        (engine,) = pids(log)
        managed.stop()  # what a cancelled job does while its thread still waits for /health
        with pytest.raises(LLMUnavailable, match="stopped during its startup"):
            starting.result(timeout=30)
    assert gone(engine)


def test_stopped_before_it_launched_it_starts_nothing(tmp_path: Path) -> None:
    managed, log = server(tmp_path, "hang")
    managed.stop()
    with pytest.raises(LLMUnavailable, match="stopped before it started"):
        managed.start()
    assert not log.exists() or "engine" not in log.read_text()
