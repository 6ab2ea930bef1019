"""Metrics and plots for a classifier report: calibration, ECE, loss curve, confusion matrix, ROC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence (for two classes, that is the usual binary ECE)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


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


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss(out: Path, history: dict[str, list[float]]) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["step"], history["train_loss"], label="train (running mean)")
    if history["val_step"]:
        ax.plot(history["val_step"], history["val_loss"], "o-", label="held-out")
    ax.set(xlabel="step", ylabel="cross-entropy", title="Loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=110)
    plt.close(fig)


def plot_confusion(out: Path, cm: np.ndarray, labels: list[str]) -> None:
    plt = _pyplot()
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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=110)
    plt.close(fig)


def plot_calibration(out: Path, probs: np.ndarray, y: np.ndarray, *, positive: int | None = None) -> None:
    """Reliability diagram: top-class confidence, or P(positive class) for a binary task."""
    plt = _pyplot()
    if positive is None:
        score, hit = probs.max(axis=1), probs.argmax(axis=1) == y
        xlabel = "confidence"
    else:
        score, hit = probs[:, positive], y == positive
        xlabel = "predicted probability"
    edges = np.linspace(0, 1, 11)
    mids, rates = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (score > lo) & (score <= hi)
        if sel.any():
            mids.append(score[sel].mean())
            rates.append(hit[sel].mean())
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(mids, rates, "o-", label="model (calibrated)")
    ax.set(xlabel=xlabel, ylabel="observed frequency", title="Calibration (test)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    plt.close(fig)
