"""Training throughput: candleflow's Keras models on each Keras backend (JAX, and PyTorch where
installed) against plain PyTorch models of the same architecture on the same batches, and the
share of step time spent waiting for input. `training.backend: auto` follows these figures
(`candleflow.models.backend_choice.MEASURED`).

    pip install torch==2.13.0      # the CPU build
    python benchmarks/bench_training.py [--steps 60] [--batch 256]

Every side trains on the same 256 x 120 x 8 float32 batches of the default synthetic dataset,
gathered by candleflow's loader; compile/warm-up steps are excluded from the timings. Keras fixes
its backend per process, so Keras-on-torch runs in a child process started by this one (the
same batches, the same machine, one after the other); JAX and plain PyTorch share this process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def keras_side(model, batches, steps: int) -> tuple[float, float]:
    """(samples/s, input-wait share) of model.fit over `steps` batches from a candleflow loader."""
    from candleflow.models.loaders import batch_loader

    waited = [0.0]

    def make(i: np.ndarray):
        t = time.perf_counter()
        out = batches(int(i[0]))
        waited[0] += time.perf_counter() - t
        return out

    model.fit(batch_loader(2, make, 1), epochs=1, verbose=0, shuffle=False)  # compile
    waited[0] = 0.0
    t0 = time.perf_counter()
    model.fit(batch_loader(steps, make, 1), epochs=1, verbose=0, shuffle=False)
    total = time.perf_counter() - t0
    return steps * batches.size / total, waited[0] / total


def torch_side(model, batches, steps: int, device: str = "cpu") -> tuple[float, float]:
    import torch

    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def step(i: int) -> float:
        t = time.perf_counter()
        x, y = batches(i)
        xb, yb = torch.from_numpy(x).to(device), torch.from_numpy(y.argmax(1)).to(device)
        wait = time.perf_counter() - t
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return wait

    for i in range(2):
        step(i)
    if device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    waited = sum(step(i) for i in range(steps))
    if device != "cpu":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return steps * batches.size / total, waited / total


def torch_lstm(n_features: int, units=(128, 64, 32), dense=(32, 16), dropout=0.3):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            sizes = [n_features, *units]
            self.lstms = nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(sizes, sizes[1:]))
            layers, prev = [], units[-1]
            for u in dense:
                layers += [nn.Linear(prev, u), nn.ReLU(), nn.Dropout(dropout)]
                prev = u
            self.head = nn.Sequential(*layers, nn.Linear(prev, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for lstm in self.lstms:
                x, _ = lstm(x)
            return self.head(x[:, -1])

    return Net()


def torch_gpt(window: int, n_features: int, d: int = 64, heads: int = 4, layers: int = 2, dense=(32, 16), dropout=0.3):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(n_features, d)
            self.pos = nn.Parameter(torch.randn(window, d) * 0.05)
            block = nn.TransformerEncoderLayer(
                d, heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True, layer_norm_eps=1e-5
            )
            self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d, eps=1e-5)
            hl, prev = [], d
            for u in dense:
                hl += [nn.Linear(prev, u), nn.ReLU(), nn.Dropout(dropout)]
                prev = u
            self.head = nn.Sequential(*hl, nn.Linear(prev, 3))
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(window))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.blocks(self.embed(x) + self.pos, mask=self.mask, is_causal=True)
            return self.head(self.norm(h)[:, -1])

    return Net()


class Batches:
    """Batch i of a fixed shuffled order of training windows: (x, one-hot y), as both sides see it."""

    def __init__(self, dataset, size: int, seed: int = 0) -> None:
        from candleflow.dataset.labels import one_hot

        self.dataset, self.size, self.one_hot = dataset, size, one_hot
        self.order = np.random.default_rng(seed).permutation(len(dataset))

    def __call__(self, i: int):
        idx = self.order[(i * self.size) % (len(self.order) - self.size) :][: self.size]
        return self.dataset.gather(idx), self.one_hot(self.dataset.labels_at(idx))


def keras_rates(cfg, prep, batches, steps: int, with_mha: bool) -> dict[str, tuple[float, float, int]]:
    """{name: (samples/s, input wait, params)} of candleflow's LSTM and GPT on this process's backend."""
    from candleflow.models.backend import keras
    from candleflow.models.networks import build_gpt, build_lstm

    train = batches.dataset
    window, n_feat = train.window, train.features.shape[1]
    mean = prep.features.values.mean(0)
    var = prep.features.values.var(0) + 1e-12
    keras.utils.set_random_seed(0)
    models = {
        "LSTM 128-64-32": lambda: build_lstm(cfg.model, window, n_feat, mean, var),
        "GPT d64 x2": lambda: build_gpt(cfg.model, window, n_feat, mean, var),
    }
    if with_mha:  # the former attention layer: MultiHeadAttention with a materialised causal mask
        models["GPT (MHA)"] = lambda: build_gpt(cfg.model, window, n_feat, mean, var, attention="mha")
    out = {}
    for name, make in models.items():
        model = make()
        rate, wait = keras_side(model, batches, steps)
        out[name] = (rate, wait, model.count_params())
    return out


def child_rates(backend: str, steps: int, batch: int) -> dict[str, tuple[float, float, int]] | str:
    """Keras on `backend` measured in a fresh process (Keras fixes its backend per process)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": backend}
    cmd = [sys.executable, __file__, "--child", "--steps", str(steps), "--batch", str(batch)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["failed"])[-1]
    return {k: tuple(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="auto", help="torch device: auto (cuda when available), cpu or cuda")
    args = ap.parse_args()
    if args.child:  # Keras on the backend KERAS_BACKEND names: print the rates as JSON
        import json

        from candleflow.config import RunConfig
        from candleflow.dataset.prepare import prepare

        cfg = RunConfig()
        prep = prepare(cfg)
        batches = Batches(prep.dataset.subset(prep.split["train"]), args.batch)
        print(json.dumps(keras_rates(cfg, prep, batches, args.steps, with_mha=False)))
        return

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    from candleflow.config import RunConfig
    from candleflow.dataset.prepare import prepare
    from candleflow.models.backend import describe_devices, keras

    if args.threads:
        torch.set_num_threads(args.threads)
    k = keras
    cfg = RunConfig()
    prep = prepare(cfg)
    train = prep.dataset.subset(prep.split["train"])
    batches = Batches(train, args.batch)
    window, n_feat = train.window, train.features.shape[1]
    print(
        f"{describe_devices()}; torch {torch.__version__} on {device} ({torch.get_num_threads()} threads); "
        f"{args.steps} steps of {args.batch} x {window} x {n_feat}"
    )
    print(f"{'model':12} {'framework':22} {'params':>9} {'samples/s':>10} {'vs torch':>9} {'input wait':>11}")
    jax_side = keras_rates(cfg, prep, batches, args.steps, with_mha=True)
    torch_models = {"LSTM 128-64-32": torch_lstm(n_feat), "GPT d64 x2": torch_gpt(window, n_feat)}
    plain = {
        name: (*torch_side(tm, batches, args.steps, device), sum(p.numel() for p in tm.parameters()))
        for name, tm in torch_models.items()
    }
    plain["GPT (MHA)"] = plain["GPT d64 x2"]  # the same PyTorch model
    other = child_rates("torch", args.steps, args.batch)
    for name, (k_rate, k_wait, k_params) in jax_side.items():
        t_rate, t_wait, t_params = plain[name]
        print(
            f"{name:12} {'candleflow (Keras/' + k.backend.backend() + ')':22} {k_params:>9,} {k_rate:>10,.0f} {k_rate / t_rate:>8.2f}x {k_wait:>10.1%}"
        )
        if isinstance(other, dict) and name in other:
            o_rate, o_wait, o_params = other[name]
            print(
                f"{'':12} {'candleflow (Keras/torch)':22} {o_params:>9,} {o_rate:>10,.0f} {o_rate / t_rate:>8.2f}x {o_wait:>10.1%}"
            )
        print(f"{'':12} {'plain PyTorch':22} {t_params:>9,} {t_rate:>10,.0f} {1.0:>8.2f}x {t_wait:>10.1%}", flush=True)
    if isinstance(other, str):
        print(f"Keras on torch: not measured ({other})")


if __name__ == "__main__":
    main()
