"""`dataset.batch_size: auto` on the default LSTM and GPT: the memory-based choice, then the step
time per sample at that batch and at a half, a quarter and an eighth of it, measured by the same
function a run uses (`fitting._fastest_batch`), and the batch it keeps; beside it, a full epoch's
samples/s at every candidate, measured the same way in one process, so the choice can be checked
against the epoch it stands for.

    python benchmarks/bench_batch_probe.py
"""

from __future__ import annotations

import logging
import time

import numpy as np

from candleflow.config import load_config
from candleflow.dataset.prepare import prepare
from candleflow.models.backend import keras
from candleflow.models.fitting import _fastest_batch, model_and_loader
from candleflow.models.memory import auto_batch_size


def epoch_rate(model, loader, ds, y, bs: int, steps: int = 12) -> float:
    """Samples per second over `steps` training steps at batch `bs` (the first, compiling, untimed)."""
    data = loader(ds, bs, shuffle=True, seed=0, labels=y)
    model.train_on_batch(*data[0][:2])
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        model.train_on_batch(*data[i % len(data)][:2])
    return steps * bs / (time.perf_counter() - t0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for kind in ("lstm", "gpt"):
        cfg = load_config(None, [f"model.kind={kind}", "dataset.batch_size=auto"])
        prep = prepare(cfg)
        train = prep.dataset.subset(prep.split["train"][:: cfg.dataset.train_stride])
        y = train.labels_at()
        keras.utils.set_random_seed(0)
        model, loader, _ = model_and_loader(cfg, prep)(train)
        largest, why = auto_batch_size(model, len(train), cfg.training.memory_share)
        print(f"{kind}: {why}")
        chosen = _fastest_batch(model, loader, train, y, None, largest)  # logs each candidate's ms per sample
        rates = {
            bs: epoch_rate(model, loader, train, y, bs)
            for bs in sorted({largest // 8, largest // 4, largest // 2, largest})
            if bs >= 32
        }
        print(f"| {kind} batch | samples/s (12 steps) | chosen |\n| --- | --- | --- |")
        for bs, r in rates.items():
            print(f"| {bs} | {r:,.0f} | {'yes' if bs == chosen else ''} |")
        best = max(rates, key=rates.get)
        print(
            f"{kind}: the probe chose {chosen}; the fastest of these epochs was {best} ({rates[best] / rates[chosen]:.2f}x the chosen)\n"
        )
        del model
        np.random.default_rng(0)


if __name__ == "__main__":
    main()
