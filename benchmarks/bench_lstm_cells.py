"""LSTM cell variants on the CPU: the default model (LSTM 128-64-32, dense 32-16, softmax) built
with Keras' `LSTM` (what candleflow uses), its `implementation=1` cell (gates as four products),
the input projection hoisted out of the scan (one (B*T, F) x (F, 4U) product before it, as oneDNN
and cuDNN do), and one fused product per step ([x_t, h] @ [W; U]); plain PyTorch `nn.LSTM` beside
them. Same weights in every Keras variant (their predictions are checked equal first), the same
256 x 120 x 8 batch, interleaved rounds, best round reported.

    pip install torch==2.13.0 && python benchmarks/bench_lstm_cells.py [--rounds 5] [--steps 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from candleflow.models.backend import describe_devices, keras

ops = keras.ops


class HoistedLSTM(keras.layers.LSTM):
    """The input projection of every step as one product before the scan; the scan only adds h @ U."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        t, f = sequences.shape[1], sequences.shape[2]
        zx = ops.reshape(ops.matmul(ops.reshape(sequences, (-1, f)), cell.kernel) + cell.bias, (-1, t, 4 * cell.units))

        def step(z_t, states):
            h, c = states
            gates = ops.split(z_t + ops.matmul(h, cell.recurrent_kernel), 4, axis=1)
            c, o = cell._compute_carry_and_output_fused(gates, c)
            h = o * cell.activation(c)
            return h, [h, c]

        return keras.src.backend.rnn(
            step, zx, list(initial_state), input_length=t, return_all_outputs=self.return_sequences
        )


class FusedStepLSTM(keras.layers.LSTM):
    """One product per step: [x_t, h] @ [W; U]."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        w = ops.concatenate([cell.kernel, cell.recurrent_kernel], axis=0)

        def step(x_t, states):
            h, c = states
            gates = ops.split(ops.matmul(ops.concatenate([x_t, h], axis=1), w) + cell.bias, 4, axis=1)
            c, o = cell._compute_carry_and_output_fused(gates, c)
            h = o * cell.activation(c)
            return h, [h, c]

        return keras.src.backend.rnn(
            step,
            sequences,
            list(initial_state),
            input_length=sequences.shape[1],
            return_all_outputs=self.return_sequences,
        )


def build(make_layer):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((120, 8))
    x = inputs
    for i, units in enumerate((128, 64, 32)):
        x = make_layer(units, i < 2)(x)
    for units in (32, 16):
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return model


VARIANTS = {
    "keras LSTM (candleflow)": lambda u, seq: keras.layers.LSTM(u, return_sequences=seq),
    "implementation=1": lambda u, seq: keras.layers.LSTM(u, return_sequences=seq, implementation=1),
    "input projection hoisted": lambda u, seq: HoistedLSTM(u, return_sequences=seq),
    "one product per step": lambda u, seq: FusedStepLSTM(u, return_sequences=seq),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 120, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 256)]
    models = {name: build(make) for name, make in VARIANTS.items()}
    base = next(iter(models.values()))
    want = base.predict(x, verbose=0)
    weights = base.get_weights()
    for name, m in models.items():
        m.set_weights(weights)
        diff = float(np.abs(m.predict(x, verbose=0) - want).max())
        assert diff < 1e-5, f"{name}: predictions differ by {diff}"
    for m in models.values():
        m.train_on_batch(x, y)  # compile
    runners = {name: (lambda m=m: m.train_on_batch(x, y)) for name, m in models.items()}
    try:
        import torch

        from bench_training import torch_lstm

        net = torch_lstm(8)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y.argmax(1))

        def torch_step() -> None:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()

        torch_step()
        runners[f"plain PyTorch nn.LSTM ({torch.__version__})"] = torch_step
    except ImportError:
        print("torch not installed: no PyTorch line (pip install torch==2.13.0)")
    best = dict.fromkeys(runners, 0.0)
    for _ in range(args.rounds):
        for name, run in runners.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run()
            best[name] = max(best[name], args.steps * 256 / (time.perf_counter() - t0))
    print(f"{describe_devices()}; best of {args.rounds} interleaved rounds of {args.steps} steps of 256 x 120 x 8")
    ref = best["keras LSTM (candleflow)"]
    for name, rate in best.items():
        print(f"{name:36} {rate:8.0f} samples/s  {rate / ref:5.2f}x candleflow's")


if __name__ == "__main__":
    main()
