"""Reward samples: cases computed by hand, scaling, determinism across workers, storage."""

from pathlib import Path

import numpy as np
import pytest

from candleflow.config import RewardConfig, SyntheticSource
from candleflow.data.load import load_candles
from candleflow.data.validate import validate_candles
from candleflow.fs.guard import MARKER
from candleflow.rewards.samples import _fill, build_reward_samples, load_samples, sample_ends, save_samples
from conftest import raw

COST = 0.001 + 0.0005
FLAT = (100, 100.2, 99.8, 100)


def one(bars, state, action, lookback=2, forward=3, e=1, volume=None, same_bar="stop"):
    o, h, l, c = (np.array(x, float) for x in zip(*bars))
    v = np.ones(len(bars)) if volume is None else np.array(volume, float)
    windows = np.zeros((1, lookback, 5), np.float32)
    reward = np.zeros(1)
    _fill(
        o,
        h,
        l,
        c,
        np.log1p(v),
        np.array([e]),
        lookback,
        forward,
        np.array([state], float),
        np.array([action], float),
        same_bar == "stop",
        COST,
        windows,
        reward,
    )
    return reward[0], windows[0]


EQ = 10_000.0
FLAT_STATE = [EQ, EQ, 0, 0, 0, 0]


def test_long_hits_take_profit():
    r, _ = one([FLAT, FLAT, (100, 102.5, 99.5, 102), FLAT, FLAT], FLAT_STATE, [1, 5000, 0.01, 0.02])
    assert r == pytest.approx((5000 * 0.02 - 5000 * 2 * COST) / EQ)


def test_long_hits_stop_loss():
    r, _ = one([FLAT, FLAT, (100, 100.5, 98.5, 99), FLAT, FLAT], FLAT_STATE, [1, 5000, 0.01, 0.02])
    assert r == pytest.approx((5000 * -0.01 - 5000 * 2 * COST) / EQ)


def test_both_touched_in_one_bar_uses_the_same_bar_rule():
    bars = [FLAT, FLAT, (100, 102.5, 98.5, 100), FLAT, FLAT]
    r, _ = one(bars, FLAT_STATE, [1, 5000, 0.01, 0.02])
    assert r == pytest.approx((-50 - 5000 * 2 * COST) / EQ)
    r, _ = one(bars, FLAT_STATE, [1, 5000, 0.01, 0.02], same_bar="target")
    assert r == pytest.approx((100 - 5000 * 2 * COST) / EQ)


def test_short_hits_take_profit():
    r, _ = one([FLAT, FLAT, (100, 100.5, 97, 97.5), FLAT, FLAT], FLAT_STATE, [-1, 2000, 0.01, 0.02])
    assert r == pytest.approx((2000 * 0.02 - 2000 * 2 * COST) / EQ)


def test_hold_with_an_open_position_is_the_position_alone():
    # long 4000 open with sl 5%, tp 10%: neither touched, exits at the window's last close 103, exit cost only
    bars = [FLAT, FLAT, (100, 101, 99.5, 101), (101, 102, 100.5, 102), (102, 103.5, 101.5, 103)]
    r, _ = one(bars, [EQ, EQ, 1, 4000, 0.05, 0.10], [0, 0, 0, 0])
    assert r == pytest.approx((4000 * 0.03 - 4000 * COST) / EQ)


def test_fees_alone_when_price_does_not_move():
    r, _ = one([FLAT] * 5, FLAT_STATE, [1, 10_000, 0.05, 0.05])
    assert r == pytest.approx(-2 * COST)


def test_window_end_exit_and_scaling_with_zero_last_volume():
    bars = [(99, 100, 98, 99.5), (100, 101, 99, 100), FLAT, FLAT, (100, 100.5, 99.5, 100.4)]
    r, w = one(bars, FLAT_STATE, [-1, 1000, 0.05, 0.05], volume=[3, 0, 1, 1, 1])
    assert r == pytest.approx((1000 * -(100.4 / 100 - 1) - 1000 * 2 * COST) / EQ)
    np.testing.assert_allclose(w[:, :4], [[0.99, 1.0, 0.98, 0.995], [1.0, 1.01, 0.99, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(w[:, 4], [np.log1p(3), 0.0], rtol=1e-6)  # last volume 0: divided by 1
    _, w = one(bars, FLAT_STATE, [0, 0, 0, 0], volume=[3, 7, 1, 1, 1])
    np.testing.assert_allclose(w[:, 4], [np.log1p(3) / np.log1p(7), 1.0], rtol=1e-6)


def test_ends_stay_inside_segments_and_results_ignore_worker_count():
    c, _ = load_candles(SyntheticSource(n_bars=3000))
    ends = sample_ends(c, 64, 32)
    assert ends.min() == 63 and ends.max() == 3000 - 33
    a = build_reward_samples(c, 150_000, seed=3, workers=1)
    b = build_reward_samples(c, 150_000, seed=3, workers=2)
    assert np.array_equal(a.windows, b.windows) and np.array_equal(a.reward, b.reward)
    assert np.array_equal(a.state, b.state) and np.array_equal(a.action, b.action)
    assert a.windows.shape == (150_000, 64, 5) and a.windows.dtype == np.float32
    assert np.all(a.windows[:, -1, 3] == 1.0)
    hold = a.action[:, 0] == 0
    assert np.all(a.action[hold, 1:] == 0) and 0.3 < hold.mean() < 0.37
    flat = a.state[:, 2] == 0
    assert np.all(a.reward[hold & flat] == 0)
    c2 = build_reward_samples(c, 1000, seed=4)
    assert not np.array_equal(c2.reward, a.reward[:1000])


def test_segments_respected():
    cols = raw(list(range(100)) + list(range(200, 300)), [100] * 200, [101] * 200, [99] * 200, [100] * 200)
    c, _ = validate_candles(cols)
    s = build_reward_samples(c, 5000, lookback=10, forward=5, seed=0)
    seg = c.segment_id
    assert np.all(seg[s.ends - 9] == seg[s.ends]) and np.all(seg[s.ends + 5] == seg[s.ends])


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".zarr"])
def test_round_trip(tmp_path, suffix):
    c, _ = load_candles(SyntheticSource(n_bars=1000))
    s = build_reward_samples(c, 500, lookback=16, forward=8, seed=1)
    back = load_samples(save_samples(s, tmp_path / f"s{suffix}"))
    for name in ("windows", "state", "action", "reward", "ends", "open_time"):
        assert np.array_equal(getattr(back, name), getattr(s, name)), name


def test_bad_ranges_are_config_errors():
    with pytest.raises(ValueError, match="low above its high"):
        RewardConfig(sl_range=(0.05, 0.01))
    with pytest.raises(ValueError, match="sum to 1"):
        RewardConfig(action_probs=[0.5, 0.5, 0.5])


def test_rank_and_regression_metrics_by_hand():
    from candleflow.rewards.model import rank, regression_metrics

    assert rank(np.array([3.0, 1.0, 2.0, 1.0])).tolist() == [4.0, 1.5, 3.0, 1.5]
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, np.array([1.0, 2.0, 3.0, 5.0]))
    assert m["r2"] == pytest.approx(1 - 1 / 5) and m["spearman"] == pytest.approx(1.0) and m["mse"] == 0.25
    assert regression_metrics(y, np.full(4, 2.5)) == {"r2": 0.0, "spearman": 0.0, "mse": 1.25}


def test_reward_split_purges_forward_windows():
    from candleflow.rewards.task import reward_split

    ends = np.arange(100, 200)
    train, val = reward_split(ends, forward=5, val_fraction=0.2, embargo=2)
    assert val[0] == 180 and train.max() + 5 + 2 < 180 and train.max() == 172


@pytest.mark.extended
@pytest.mark.integration
def test_reward_run_and_cli(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, COLUMNS="200")
    base = [sys.executable, "-m", "candleflow.cli"]
    sets = [
        "--set",
        "source.n_bars=3000",
        "--set",
        "rewards.n=4000",
        "--set",
        "rewards.lookback=16",
        "--set",
        "rewards.forward=8",
    ]
    out = subprocess.run(
        base + ["rewards", *sets, "--out", str(tmp_path / "s.parquet")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "4,000 reward samples" in out.stdout and "hold" in out.stdout and (tmp_path / "s.parquet").is_file()
    assert len(load_samples(tmp_path / "s.parquet")) == 4000
    out = subprocess.run(
        base
        + [
            "run",
            "--config",
            str(Path(__file__).resolve().parents[1] / "configs/reward-model.yaml"),
            *sets,
            "--set",
            "training.epochs=1",
            "--set",
            "output.name=rw",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "R^2" in out.stdout and "Spearman" in out.stdout
    metrics = json.loads((tmp_path / "runs/rw/metrics.json").read_text())
    assert set(metrics["val"]["table"]) == {"model", "zero", "mean"} and metrics["val"]["n"] == 800
    listing = subprocess.run(base + ["models", "list"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "R^2" in listing.stdout
    report = subprocess.run(base + ["report", "rw"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert report.returncode == 2 and "reward-model run" in report.stderr
    # an untouched reward run exports (three inputs: windows, state, action) and serves its predictions
    exported = subprocess.run(base + ["export", "rw"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    from candleflow.models.export import load_stablehlo
    from candleflow.runs.registry import load_model

    bundle = tmp_path / "runs/rw/export-stablehlo"
    serving = json.loads((bundle / "serving.json").read_text())
    shapes = dict(zip(serving["input_names"], serving["input_shape"]))
    assert shapes == {"window": [None, 16, 5], "state": [None, 6], "action": [None, 4]}
    assert serving["model_kind"] == "reward"
    samples = load_samples(tmp_path / "s.parquet")
    given = {"window": samples.windows[:7], "state": samples.state[:7], "action": samples.action[:7]}
    xs = [given[n] for n in serving["input_names"]]
    want = np.asarray(load_model(tmp_path / "runs/rw").predict(given, verbose=0))
    np.testing.assert_allclose(load_stablehlo(bundle / "model.stablehlo")(*xs), want, rtol=1e-4, atol=1e-6)


def test_out_reuses_arrays_with_identical_results():
    c, _ = load_candles(SyntheticSource(n_bars=2000))
    first = build_reward_samples(c, 3000, lookback=16, forward=8, seed=1)
    windows_id = id(first.windows)
    again = build_reward_samples(c, 3000, lookback=16, forward=8, seed=2, out=first)
    assert id(again.windows) == windows_id
    fresh = build_reward_samples(c, 3000, lookback=16, forward=8, seed=2)
    assert np.array_equal(again.windows, fresh.windows) and np.array_equal(again.reward, fresh.reward)
    with pytest.raises(ValueError, match="out holds windows"):
        build_reward_samples(c, 10, lookback=16, forward=8, out=first)


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".zarr"])
def test_streamed_samples_equal_the_in_memory_ones(tmp_path, suffix):
    """Written chunk by chunk as they are made (3 chunks of 65,536 and a remainder, in groups of
    2 threads): the file reads back equal to build_reward_samples + save_samples, and the returned
    rewards and sides are the samples'."""
    from candleflow.rewards.samples import CHUNK, stream_reward_samples

    c, _ = load_candles(SyntheticSource(n_bars=2000))
    n = 3 * CHUNK + 17
    mem = build_reward_samples(c, n, lookback=8, forward=4, seed=2)
    path, reward, side = stream_reward_samples(c, n, tmp_path / f"s{suffix}", lookback=8, forward=4, seed=2, workers=2)
    back = load_samples(path)
    for name in ("windows", "state", "action", "reward", "ends", "open_time"):
        assert np.array_equal(getattr(back, name), getattr(mem, name)), name
    assert np.array_equal(reward, mem.reward) and np.array_equal(side, mem.action[:, 0])
    assert not [p for p in tmp_path.rglob(".*") if p.name != MARKER]  # no scratch or temporary left behind
