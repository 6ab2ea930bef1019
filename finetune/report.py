"""Metrics and plots for a classifier report: calibration, ECE, loss curve, confusion matrix, ROC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: binned |accuracy - confidence| of the most likely class (multi-class tasks).

    For a binary probability use :func:`binary_calibration_error`: folding
    P and 1 - P into one confidence lets over- and under-prediction cancel.
    """
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def binary_calibration_error(p: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of P(positive): binned |observed positive rate - mean predicted|, weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (p > lo) & (p <= hi) if lo > 0 else (p >= lo) & (p <= hi)
        if sel.any():
            total += sel.mean() * abs(labels[sel].mean() - p[sel].mean())
    return float(total)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood on held-out logits."""
    import torch

    x = torch.tensor(logits, dtype=torch.float32)
    y = torch.tensor(labels)
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().item())


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss(out: Path, history: dict[str, list[float]], *, ylabel: str = "cross-entropy",
              title: str = "Loss") -> None:
    """``loss.png``: the running training loss and the held-out evaluations (``val_step``, ``val_loss``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["step"], history["train_loss"], label="train (running mean)")
    if history["val_step"]:
        ax.plot(history["val_step"], history["val_loss"], "o-", label="held-out")
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=110)
    plt.close(fig)


def plot_confusion(out: Path, cm: np.ndarray, labels: list[str]) -> None:
    plt = pyplot()
    size = 3 + 0.25 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    if len(labels) <= 6:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (row-normalised, test)")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)


def plot_roc(out: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> None:
    """ROC curves by model name: (false positive rates, true positive rates, AUC)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=110)
    plt.close(fig)


def _reliability(score: np.ndarray, hit: np.ndarray, bins: int = 10) -> tuple[list[float], list[float]]:
    edges = np.linspace(0, 1, bins + 1)
    mids, rates = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (score > lo) & (score <= hi)
        if sel.any():
            mids.append(float(score[sel].mean()))
            rates.append(float(hit[sel].mean()))
    return mids, rates


def _calibration_figure(out: Path, curves: dict[str, tuple[list[float], list[float]]], xlabel: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    for name, (mids, rates) in curves.items():
        ax.plot(mids, rates, "o-", label=name)
    ax.set(xlabel=xlabel, ylabel="observed frequency", title="Calibration (test)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    plt.close(fig)


def plot_calibration(out: Path, probs: np.ndarray, y: np.ndarray) -> None:
    """Reliability diagram of the top-class confidence (multi-class tasks)."""
    curve = _reliability(probs.max(axis=1), probs.argmax(axis=1) == y)
    _calibration_figure(out, {"model (calibrated)": curve}, "confidence")


def plot_binary_calibration(out: Path, models: dict[str, np.ndarray], y: np.ndarray) -> None:
    """Reliability diagram of P(positive) for each named model."""
    _calibration_figure(out, {name: _reliability(p, y == 1) for name, p in models.items()},
                        "predicted probability")
