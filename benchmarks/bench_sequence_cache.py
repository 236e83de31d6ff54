"""Would a sequence cache help? Shuffled training batches (256 windows of 120 x 8) gathered from
the zero-copy strided view (what candleflow does) against the same batches indexed from a cache of
every window materialised in memory ("hot windows"), on the default market's windows, in one
process, best of several rounds; and the memory the cache would take.

    python benchmarks/bench_sequence_cache.py
"""

from __future__ import annotations

import time

import numpy as np

from candleflow.config import load_config
from candleflow.dataset.prepare import prepare

B, ROUNDS = 256, 5


def epoch_seconds(draw, order: np.ndarray) -> float:
    """One epoch of full batches in `order`."""
    t = time.perf_counter()
    for k in range(order.size // B):
        draw(order[k * B : (k + 1) * B])
    return time.perf_counter() - t


def main() -> None:
    prep = prepare(load_config(None))
    ds = prep.dataset
    t0 = time.perf_counter()
    cache = ds.gather(np.arange(len(ds)))  # every window, contiguous: the sequence cache
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    view_s, cache_s = [], []
    for _ in range(ROUNDS):  # interleaved, so both see the same machine state
        order = rng.permutation(len(ds))
        view_s.append(epoch_seconds(ds.gather, order))
        cache_s.append(epoch_seconds(lambda idx: cache[idx], order))
    batches = len(ds) // B
    n = B * batches
    v, c = n / min(view_s), n / min(cache_s)
    print(f"{len(ds):,} windows of {ds.shape[1:]}; {batches} shuffled batches of {B} (an epoch), best of {ROUNDS}")
    print("| path | windows/s | memory |")
    print("| --- | --- | --- |")
    print(f"| strided view + gather (candleflow) | {v:,.0f} | features {ds.features.nbytes / 2**20:.1f} MB |")
    print(
        f"| sequence cache (materialised windows) | {c:,.0f} | {cache.nbytes / 2**20:,.0f} MB, built in {build_s:.2f} s |"
    )
    print(f"cache / view: {c / v:.2f}x")


if __name__ == "__main__":
    main()
