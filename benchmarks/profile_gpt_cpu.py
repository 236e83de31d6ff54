"""Where the GPT's CPU training time goes: each building block of one pre-norm block, forward and
backward on a (256, 120, 64) batch, as XLA compiles it (jax.jit of the gradient) and as PyTorch
runs it, side by side. `bench_training.py` shows the whole model at 0.45x PyTorch on CPU; this
says which operations account for it.

    python benchmarks/profile_gpt_cpu.py            # needs torch (pip install torch==2.13.0)
"""

from __future__ import annotations

import time

import numpy as np

B, T, D, H = 256, 120, 64, 4
K = D // H


def best(call, repeat: int = 15) -> float:
    call()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times)


def jax_side() -> dict[str, float]:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((B, T, D), dtype=np.float32))
    w = {
        "qkv": jnp.asarray(rng.standard_normal((D, 3 * D), dtype=np.float32) * 0.1),
        "o": jnp.asarray(rng.standard_normal((D, D), dtype=np.float32) * 0.1),
        "in": jnp.asarray(rng.standard_normal((D, 4 * D), dtype=np.float32) * 0.1),
        "out": jnp.asarray(rng.standard_normal((4 * D, D), dtype=np.float32) * 0.1),
        "g": jnp.ones(D),
        "b": jnp.zeros(D),
    }

    def norm(p, x):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / jnp.sqrt(v + 1e-5) * p["g"] + p["b"]

    def attention_fused(p, x):
        q, k, v = jnp.split(x @ p["qkv"], 3, axis=-1)
        q, k, v = (a.reshape(B, T, H, K) for a in (q, k, v))
        o = jax.nn.dot_product_attention(q, k, v, is_causal=True)
        return o.reshape(B, T, D) @ p["o"]

    def attention_masked(p, x):
        q, k, v = jnp.split(x @ p["qkv"], 3, axis=-1)
        q, k, v = (a.reshape(B, T, H, K).transpose(0, 2, 1, 3) for a in (q, k, v))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(K)
        s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -1e30)
        o = jax.nn.softmax(s, -1) @ v
        return o.transpose(0, 2, 1, 3).reshape(B, T, D) @ p["o"]

    def mlp(p, x):
        return jax.nn.gelu(x @ p["in"], approximate=False) @ p["out"]

    def matmuls(p, x):
        return (x @ p["in"]) @ p["out"]

    def gelu(p, x):
        return jax.nn.gelu(x, approximate=False)

    def attention_blocks(p, x):
        from candleflow.models.networks import _blockwise_causal

        q, k, v = jnp.split((x.reshape(-1, D) @ p["qkv"]).reshape(B, T, 3 * D), 3, axis=-1)
        o = _blockwise_causal(*(a.reshape(B, T, H, K) for a in (q, k, v)))
        return (o.reshape(-1, D) @ p["o"]).reshape(B, T, D)

    def mlp_rows(p, x):
        return (jax.nn.gelu(x.reshape(-1, D) @ p["in"], approximate=False) @ p["out"]).reshape(B, T, D)

    parts = {
        "layer norm": norm,
        "attention, fused (dot_product_attention)": attention_fused,
        "attention, explicit mask + softmax": attention_masked,
        "attention, blockwise (candleflow on CPU)": attention_blocks,
        "MLP 64-256-64, GELU": mlp,
        "  its two matmuls alone": matmuls,
        "  GELU (exact) alone, on (B, T, 64)": gelu,
        "MLP as 2-D products (candleflow)": mlp_rows,
    }
    out = {}
    for name, f in parts.items():
        step = jax.jit(jax.grad(lambda p, x, f=f: f(p, x).sum(), argnums=(0, 1)))
        out[name] = best(lambda step=step: jax.block_until_ready(step(w, x)))
    return out


def torch_side() -> dict[str, float]:
    import torch

    torch.manual_seed(0)
    x = torch.randn(B, T, D, requires_grad=True)
    norm = torch.nn.LayerNorm(D)
    qkv, o = torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)
    mlp = torch.nn.Sequential(torch.nn.Linear(D, 4 * D), torch.nn.GELU(), torch.nn.Linear(4 * D, D))

    def attention(x):
        q, k, v = qkv(x).split(D, -1)
        q, k, v = (a.view(B, T, H, K).transpose(1, 2) for a in (q, k, v))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return o(y.transpose(1, 2).reshape(B, T, D))

    def masked(x):
        q, k, v = qkv(x).split(D, -1)
        q, k, v = (a.view(B, T, H, K).transpose(1, 2) for a in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / K**0.5
        s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
        return o((s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D))

    lin_in, lin_out = mlp[0], mlp[2]
    gelu = torch.nn.GELU()
    parts = {
        "layer norm": norm,
        "attention, fused (dot_product_attention)": attention,
        "attention, explicit mask + softmax": masked,
        "attention, blockwise (candleflow on CPU)": attention,  # torch: its fused SDPA, the same math
        "MLP 64-256-64, GELU": mlp,
        "  its two matmuls alone": lambda x: lin_out(lin_in(x)),
        "  GELU (exact) alone, on (B, T, 64)": gelu,
        "MLP as 2-D products (candleflow)": mlp,
    }
    out = {}
    for name, f in parts.items():

        def step(f=f):
            x.grad = None
            f(x).sum().backward()

        out[name] = best(step)
    return out


def main() -> None:
    import torch

    j, t = jax_side(), torch_side()
    print(
        f"forward + backward of one building block on ({B}, {T}, {D}) float32, best of 15; torch {torch.get_num_threads()} threads"
    )
    print(f"{'block':44s} {'XLA (JAX) ms':>13s} {'PyTorch ms':>11s} {'XLA / torch':>12s}")
    for name in j:
        print(f"{name:44s} {j[name] * 1e3:13.2f} {t[name] * 1e3:11.2f} {j[name] / t[name]:11.2f}x")


if __name__ == "__main__":
    main()
