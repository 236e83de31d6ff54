"""Input wait with and without prefetch: the LSTM and the GPT trained by `candleflow run` on the
embedded market (12,000 bars, 2 epochs), `dataset.prefetch` 0 (batches made on demand) against 2
(a background thread makes the next two), in one process; prints each epoch's input time, the
share of the epoch the training loop waited for input, and whether the results are identical.

    python benchmarks/bench_prefetch.py
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import candleflow as cf


def history(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "history.csv") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def main() -> None:
    runs = Path(tempfile.mkdtemp(prefix="bench-prefetch-"))
    print("| family | prefetch | input s / epoch | input wait (share of epoch) | val_loss |")
    print("| --- | --- | --- | --- | --- |")
    for kind in ("lstm", "gpt"):
        losses = {}
        for prefetch in (0, 2):
            cfg = cf.load_config(
                None,
                [
                    "source.n_bars=12000",
                    "training.epochs=2",
                    "training.patience=5",
                    "training.verbose=0",
                    f"model.kind={kind}",
                    f"dataset.prefetch={prefetch}",
                    "evaluation.reference_models=[]",
                    f"output.runs_dir={runs}",
                    f"output.name={kind}-p{prefetch}",
                ],
            )
            h = history(cf.run(cfg).run_dir)
            losses[prefetch] = [e["val_loss"] for e in h]
            print(
                f"| {kind} | {prefetch} | {sum(e['input_s'] for e in h) / len(h):.2f} | "
                f"{100 * sum(e['input_wait'] for e in h) / len(h):.2f}% | {h[-1]['val_loss']:.5f} |",
                flush=True,
            )
        print(f"| {kind} | identical results | | | {losses[0] == losses[2]} |")


if __name__ == "__main__":
    main()
