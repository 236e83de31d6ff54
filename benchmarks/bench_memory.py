"""Predicted training memory (candleflow.memory) against measured peak, for every model family.

Each case runs in a fresh process: build the model and its data, note resident memory, train
two short epochs while a thread samples resident memory every 2 ms; measured = peak - start.

    python benchmarks/bench_memory.py            # all cases, one table
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

CASES = [  # (family, batch, config overrides, window or image size)
    ("lstm", 64, {}, {"T": 120}),
    ("lstm", 256, {}, {"T": 120}),
    ("lstm", 1024, {}, {"T": 120}),
    ("lstm", 384, {"lstm_units": [96, 48]}, {"T": 90}),
    ("gpt", 64, {}, {"T": 120}),
    ("gpt", 256, {}, {"T": 120}),
    ("gpt", 1024, {}, {"T": 120}),
    ("gpt", 192, {"gpt_d_model": 48, "gpt_heads": 3, "gpt_layers": 2}, {"T": 90}),
    ("mlp", 256, {}, {"T": 120}),
    ("mlp", 4096, {}, {"T": 120}),
    ("mlp", 2048, {"dense_units": [128, 32]}, {"T": 90}),
    ("cnn", 64, {}, {"H": 64, "W": 60}),
    ("cnn", 128, {}, {"H": 64, "W": 60}),
    ("cnn", 256, {"cnn_filters": [32, 64]}, {"H": 48, "W": 30}),
]


def child(kind: str, batch: int, over: dict, size: dict) -> dict:
    import numpy as np
    import psutil

    from candleflow.config import ModelConfig
    from candleflow.models.backend import keras
    from candleflow.models.memory import estimate_training_memory
    from candleflow.models.networks import build_cnn, build_gpt, build_lstm, build_mlp

    assert keras.__version__  # import Keras before measuring
    cfg = ModelConfig(kind=kind, **over)
    rng = np.random.default_rng(0)
    if kind == "cnn":
        model = build_cnn(cfg, (size["H"], size["W"]))
        x = rng.random((batch * 4, size["H"], size["W"], 1), dtype=np.float32)
    else:
        build = {"lstm": build_lstm, "gpt": build_gpt, "mlp": build_mlp}[kind]
        model = build(cfg, size["T"], 8, np.zeros(8), np.ones(8))
        x = rng.random((batch * 4, size["T"], 8), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, len(x))]
    proc = psutil.Process()
    start = proc.memory_info().rss
    peak, done = [start], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
    done.set()
    t.join()
    est = estimate_training_memory(model, batch)
    return {"measured_mb": (peak[0] - start) / 2**20, "predicted_mb": est["total_mb"], "parameters": est["parameters"]}


def main() -> None:
    from candleflow.models.backend import describe_devices

    print(f"training memory, predicted vs measured peak ({describe_devices()})")
    print(
        f"{'family':6} {'batch':>6} {'config':44} {'params':>9} {'predicted MB':>12} {'measured MB':>12} {'ratio':>6}"
    )
    worst = 0.0
    for kind, batch, over, size in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps([kind, batch, over, size])],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = r["predicted_mb"] / r["measured_mb"]
        worst = max(worst, abs(ratio - 1))
        desc = ", ".join(f"{k}={v}" for k, v in {**over, **size}.items())
        print(
            f"{kind:6} {batch:>6} {desc:44} {r['parameters']:>9,} {r['predicted_mb']:>12.0f} "
            f"{r['measured_mb']:>12.0f} {ratio:>6.2f}",
            flush=True,
        )
    print(f"largest deviation: {worst:.0%} (goal: within 25%)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(*json.loads(sys.argv[2]))))
    else:
        main()
