"""``aisle finetune classifier``: fine-tune the packaged MiniLM BERT with a task head.

Every task trains with the same loop (``finetune.trainer``): length-bucketed
batches, warmup/decay, early stopping on a held-out split, and the obvious
baseline on the same split. Each run writes a versioned model directory with
``metrics.json`` and PNG plots (loss, confusion matrix or ROC, calibration).

Tasks:
- ``intent``: Bitext utterances plus product and return questions.
- ``sentiment``: real clothing reviews plus the demo store's; the encoder is
  blended with a TF-IDF model and decision thresholds are tuned on held-out.
- ``churn``: Online Retail and demo shoppers at time cut-offs; history text and
  RFM features feed one head that starts from the RFM baseline.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from finetune.classifier import ClassifierArgs


def main(args: ClassifierArgs, say: Any = None) -> Path:
    """Train, evaluate and save; returns the versioned model directory."""
    import torch

    say = say or (lambda m: print(m, file=sys.stderr, flush=True))
    torch.manual_seed(args.seed)
    if args.task == "churn":
        from finetune.churn import run_churn

        return run_churn(args, say)
    from finetune.text_tasks import run_text_task

    return run_text_task(args, say)
