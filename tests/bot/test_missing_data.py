"""Every command that needs the public datasets says, in one line, where it looked and how to point elsewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.public_data import DATASETS, MissingData, require
from tests.conftest import REPO

AISLE = [sys.executable, "-m", "bot.cli"]


def run(command: list[str], data: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # `make test` runs this suite: a make started here must not think it is the outer one's child
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    env.update(AISLE_DATA=str(data), AISLE_HOME=str(tmp_path / "home"))
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def assert_one_line(done: subprocess.CompletedProcess[str], data: Path, *, make: bool = False) -> None:
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    if make:  # make adds its own "make: *** [Makefile:N: target] Error 2"
        lines = [line for line in lines if not re.match(r"make(?:\[\d+\])?: \*\*\*", line)]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: ") and str(data) in line and "AISLE_DATA" in line, line
    assert 'README.md "Datasets"' in line and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [
    ["finetune", "classifier", "--task", "intent"],
    ["finetune", "classifier", "--task", "sentiment"],
    ["finetune", "classifier", "--task", "churn", "--quick"],
    ["finetune", "bootstrap", "--ship"],
    ["finetune", "bootstrap", "--refresh"],
    ["bench", "retrieval", "--json", "out.json"],
    ["bench", "classifier", "--json", "out.json"],
    ["bench", "lora", "--json", "out.json"],
    ["bench", "learning", "--json", "out.json"],
    ["datasets", "--need", "online_retail"],
])
def test_a_command_that_needs_missing_data_prints_one_line_and_fails(command: list[str], tmp_path: Path) -> None:
    data = tmp_path / "no-data"
    done = run([*AISLE, *command], data, tmp_path)
    assert_one_line(done, data)
    assert f"{data} (no such folder)" in done.stderr
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.safetensors"))


def test_the_data_flag_points_elsewhere_and_names_the_missing_dataset(tmp_path: Path) -> None:
    data = tmp_path / "partial"
    (data / "bitext_intents").mkdir(parents=True)
    (data / "bitext_intents" / "train.csv").write_text("utterance,intent\n")
    done = run([*AISLE, "finetune", "classifier", "--task", "intent", "--data", str(data)], tmp_path / "unused",
               tmp_path)
    assert_one_line(done, data)
    assert "the bitext_intents dataset" in done.stderr and "the datasets folder" in done.stderr


@pytest.mark.parametrize("target", ["shipped-signals", "shipped-adapter", "shipped-adapter-refresh"])
def test_make_targets_that_train_shipped_models_stop_at_once_without_the_data(target: str, tmp_path: Path) -> None:
    # -o: the installed venv and models count as up to date (the check runs before anything else)
    home = REPO / "var"
    done = run(["make", "--no-print-directory", "-o", ".venv/.installed",
                "-o", str(home / "models" / "SmolLM2-135M-Instruct" / "aisle-prepared.json"), target,
                f"AISLE_HOME={home}"], tmp_path / "no-data", tmp_path)
    assert_one_line(done, tmp_path / "no-data", make=True)
    assert f'make {target}' in done.stderr


def test_the_datasets_listing_says_what_is_found(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "chat_sentiment").mkdir(parents=True)
    (data / "chat_sentiment" / "tweets.tsv").write_text("id\tmean_rating\ttext\n")
    done = run([*AISLE, "datasets"], data, tmp_path)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line for line in done.stderr.splitlines()[1:]}
    assert set(listed) == set(DATASETS)
    assert "found" in listed["chat_sentiment"] and "missing" in listed["bitext_intents"]


def test_require_passes_when_every_file_is_there(tmp_path: Path) -> None:
    for name in ("twitter_customer_care",):
        for path in DATASETS[name].paths(tmp_path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("[]")
    require(tmp_path, ["twitter_customer_care"], "a test")
    with pytest.raises(MissingData, match="needs the online_retail dataset, not found in the datasets folder"):
        require(tmp_path, ["twitter_customer_care", "online_retail"], "a test")
