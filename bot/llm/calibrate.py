"""Deadlines measured against the server's own speed, not fixed for one machine.

How long a first token may take depends on the machine: on an AVX2-only CPU a prefill
took about five times as long as on one with AVX512-BF16, and fixed deadlines turned
every reply of a burst into a fallback there. So once vLLM is up, one probe completion of
a prompt the size of a real turn is timed, and the deadlines are the configured ones or
what a burst of that many prefills needs at the probed speed, whichever is longer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

PROBE_PROMPT = " ".join(["Product: a warm winter jacket, waterproof, in three colours, priced in dollars."] * 24)
"""About 400 tokens: the size of a turn's prompt (instructions, five products, history)."""


@dataclass(frozen=True, slots=True)
class Deadlines:
    first_token_s: float
    token_gap_s: float
    probe_s: float | None = None  # the probe's prefill time; None: not measured, the configured values stand

    def as_meta(self) -> dict[str, float | None]:
        return {"first_token_s": self.first_token_s, "token_gap_s": self.token_gap_s, "probe_s": self.probe_s}


def calibrated(probe_s: float | None, *, first_token_s: float, token_gap_s: float, burst: int = 8,
               margin: float = 2.0, cap_s: float = 120.0) -> Deadlines:
    """Deadlines for a server whose prefill of one turn took ``probe_s``.

    A first token may wait behind a burst of ``burst`` prefills; ``margin`` leaves room for
    the rest of the machine's load. The configured values are floors; ``cap_s`` bounds what
    a very slow probe asks for, so a wedged server is still noticed.
    """
    if probe_s is None or probe_s <= 0:
        return Deadlines(first_token_s, token_gap_s)
    need = min(cap_s, margin * burst * probe_s)
    return Deadlines(round(max(first_token_s, need), 2), round(max(token_gap_s, need), 2), round(probe_s, 3))


def probe(url: str, model: str, timeout_s: float = 120.0, runs: int = 2) -> float:
    """Seconds vLLM takes to prefill a turn-sized prompt and give one token (the fastest of ``runs``).

    The prompt differs from run to run so that the prefix cache does not answer it.

    Raises:
        httpx.HTTPError: when the server does not answer.
    """
    best = float("inf")
    for i in range(runs):
        started = time.perf_counter()
        httpx.post(f"{url}/v1/completions", timeout=timeout_s, json={
            "model": model, "prompt": f"{i} {time.time_ns()} {PROBE_PROMPT}", "max_tokens": 1, "temperature": 0,
        }).raise_for_status()
        best = min(best, time.perf_counter() - started)
    return best
