"""Chart images: pixel-exact layouts drawn by hand, and identical round trips through storage."""

import numpy as np
import pytest

from candleflow.fs.guard import MARKER
from candleflow.images.render import render_bar4, render_jkx
from candleflow.images.store import ImageReader, write_images

N = np.nan


def marks(img, fg):
    """Set of (row, col) pixels that are foreground."""
    return set(zip(*np.nonzero(img == fg)))


def test_bar4_by_hand():
    # bar 0: o1 h3 l1 c2; bar 1: o2 h5 l2 c4; height 5 maps price p to row 5 - p
    img = render_bar4(np.array([[[1, 3, 1, 2], [2, 5, 2, 4]]], float), height=5)[0]
    assert img.shape == (5, 8) and img.dtype == np.uint8
    expected = {
        (2, 0),
        (3, 0),
        (4, 0),
        (4, 1),
        (3, 2),  # bar 0: line, open, close
        (0, 4),
        (1, 4),
        (2, 4),
        (3, 4),
        (3, 5),
        (1, 6),
    }  # bar 1
    assert marks(img, 0) == expected
    assert np.all(img[:, [3, 7]] == 255)  # the 4th column of each bar stays empty
    assert set(np.unique(img)) == {0, 255}


def test_bar4_missing_bar_blank_and_flat_window_in_the_middle():
    img = render_bar4(np.array([[[1, 3, 1, 2], [N, N, N, N]]], float), height=3)[0]
    # scaled on bar 0 alone: low 1 -> row 2, high 3 -> row 0, close 2 -> row 1
    assert marks(img, 0) == {(0, 0), (1, 0), (2, 0), (2, 1), (1, 2)}
    flat = render_bar4(np.array([[[7, 7, 7, 7]]], float), height=5)[0]
    assert marks(flat, 0) == {(2, 0), (2, 1), (2, 2)}
    f32 = render_bar4(np.array([[[1, 3, 1, 2]]], float), height=3, dtype="float32")
    assert f32.dtype == np.float32 and set(np.unique(f32)) == {0.0, 1.0}


def test_jkx_by_hand_with_volume():
    # height 10: volume rows 8-9 (10 // 5 = 2), gap row 7, prices on rows 0-6 with p -> 7 - p
    win = np.array([[[1, 4, 1, 3, 5], [3, 7, 3, 6, 10]]], float)
    img = render_jkx(win, height=10)[0]
    assert img.shape == (10, 6)
    expected = {
        (3, 1),
        (4, 1),
        (5, 1),
        (6, 1),
        (6, 0),
        (4, 2),  # bar 0: bar, open tick, close tick
        (0, 4),
        (1, 4),
        (2, 4),
        (3, 4),
        (4, 4),
        (4, 3),
        (1, 5),  # bar 1
        (9, 1),  # volume 5/10 of 2 rows -> 1 pixel
        (8, 4),
        (9, 4),
    }  # volume 10/10 -> 2 pixels
    assert marks(img, 255) == expected
    assert np.all(img[7] == 0)  # the gap row


def test_jkx_moving_average_line():
    win = np.array([[[1, 4, 1, 3, 5], [3, 7, 3, 6, 10]]], float)
    plain = render_jkx(win, height=10)[0]
    with_ma = render_jkx(win, height=10, ma=np.array([[2.0, 5.0]]))[0]
    # MA points at the centre columns (rows 5 and 2: already bar pixels) joined at columns 2 and 3
    # by interpolation: 3 -> row 4 (column 2, the close tick) and 4 -> row 3 (column 3, new)
    assert marks(with_ma, 255) - marks(plain, 255) == {(3, 3)}


def test_jkx_standard_sizes():
    rng = np.random.default_rng(0)
    for bars, shape in ((5, (32, 15)), (20, (64, 60)), (60, (96, 180))):
        c = 100 + rng.normal(0, 1, (2, bars)).cumsum(1)
        win = np.stack([c, c + 1, c - 1, c, rng.uniform(1, 2, (2, bars))], axis=2)
        assert render_jkx(win).shape == (2, *shape)
    with pytest.raises(ValueError, match="no standard height for 7 bars"):
        render_jkx(np.ones((1, 7, 5)))


@pytest.mark.parametrize(
    "fmt,mode",
    [
        ("hdf5", "single"),
        ("hdf5", "batch"),
        ("npz", "single"),
        ("npz", "batch"),
        ("zarr", "single"),
        ("zarr", "batch"),
        ("png", "single"),
        ("jpeg", "single"),
    ],
)
def test_round_trip_every_format(tmp_path, fmt, mode):
    rng = np.random.default_rng(1)
    c = 100 + rng.normal(0, 1, (7, 20)).cumsum(1)
    win = np.stack([c, c + 1, c - 1, c + 0.5, rng.uniform(1, 2, (7, 20))], axis=2)
    images = render_jkx(win)
    labels = np.array([0, 1, 2, 1, 0, 2, 1], np.int8)
    times = np.arange(7, dtype=np.int64) * 3_600_000_000_000
    symbols = ["BTCUSDT", "ETHUSDT", "BTCUSDT", "BTCUSDT", "ETHUSDT", "BTCUSDT", "BTCUSDT"]
    target = tmp_path / ("store" + {"hdf5": ".h5", "npz": ".npz"}.get(fmt, "") if mode == "single" else "store")
    write_images(target, images, labels, times, symbols, fmt=fmt, mode=mode, images_per_file=3, meta={"layout": "jkx"})
    r = ImageReader(target)
    assert len(r) == 7 and r.meta["layout"] == "jkx"
    img, lab, extra = r[np.arange(7)]
    if fmt == "jpeg":
        assert np.mean(np.abs(img.astype(int) - images)) < 20  # lossy: close, not equal
    else:
        assert np.array_equal(img, images)
    assert lab.tolist() == labels.tolist() and extra["end_time"].tolist() == times.tolist()
    assert extra["symbol"].tolist() == symbols
    one, l1, e1 = r[4]
    assert l1 == 0 and e1["symbol"] == "ETHUSDT" and one.shape == (64, 60)
    part, lp, _ = r[2:6]
    assert lp.tolist() == [2, 1, 0, 2] and part.shape == (4, 64, 60)
    # no temporary leftovers; only candleflow's marker, which lets a later --overwrite replace the folder
    assert not [p for p in tmp_path.rglob(".*") if p.name != MARKER]


def test_image_windows_render_the_dataset_windows_and_refuse_segment_crossings():
    from candleflow.config import ImagesConfig, SyntheticSource
    from candleflow.data.load import load_candles
    from candleflow.images.render import ImageWindows, moving_average

    c, _ = load_candles(SyntheticSource(n_bars=500))
    cfg = ImagesConfig(layout="jkx", bars=20)
    iw = ImageWindows(c, np.array([19, 100, 499]), cfg)
    imgs = iw.render(np.arange(3))
    assert imgs.shape == (3, 64, 60) and iw.shape == (64, 60)
    win = np.stack([c.open, c.high, c.low, c.close, c.volume], axis=1)[81:101][None]
    ma = moving_average(c, 20)
    assert np.isnan(ma[18]) and ma[19] == pytest.approx(c.close[:20].mean())
    assert np.array_equal(imgs[1], render_jkx(win, ma=ma[81:101][None])[0])
    from candleflow.data.candles import Candles

    split = Candles(c.open_time, c.open, c.high, c.low, c.close, c.volume, np.array([[0, 90], [90, 500]]), "S", "1h")
    with pytest.raises(ValueError, match="crosses a segment boundary"):
        ImageWindows(split, np.array([100]), cfg)


@pytest.mark.extended
@pytest.mark.integration
def test_images_cli_and_cnn_run(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, COLUMNS="200")
    base = [sys.executable, "-m", "candleflow.cli"]
    out = subprocess.run(
        base
        + [
            "images",
            "--set",
            "source.n_bars=1500",
            "--format",
            "zarr",
            "--layout",
            "jkx",
            "--out",
            str(tmp_path / "imgs"),
            "--limit",
            "300",
            "--preview",
            str(tmp_path / "p.png"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "300 jkx images 64x60 rendered on the CPU" in out.stdout and (tmp_path / "p.png").stat().st_size > 10_000
    r = ImageReader(tmp_path / "imgs.zarr")
    assert len(r) == 300 and r.meta["layout"] == "jkx" and r[0][0].shape == (64, 60)
    run = subprocess.run(
        base
        + [
            "run",
            "--set",
            "source.n_bars=2500",
            "--set",
            "dataset.window=24",
            "--set",
            "model.kind=cnn",
            "--set",
            "model.cnn_filters=[4,8]",
            "--set",
            "training.epochs=1",
            "--set",
            "output.name=cnn",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    meta = json.loads((tmp_path / "runs/cnn/metadata.json").read_text())
    assert meta["input_shape"] == [64, 60, 1] and meta["model_kind"] == "cnn"
    assert "conv_1_4" in (tmp_path / "runs/cnn/model_summary.txt").read_text()


def test_without_a_gpu_rendering_falls_back_to_the_cpu_with_one_log_line(caplog):
    import logging

    from candleflow.images.render_gpu import gpu_available

    gpu_available.cache_clear()
    win = np.array([[[1, 3, 1, 2], [2, 5, 2, 4]]], float)
    with caplog.at_level(logging.INFO, logger="candleflow"):
        for _ in range(3):
            auto = render_bar4(win, height=5)
    if gpu_available():  # on a CUDA machine with CuPy: the GPU must draw the same pixels
        assert np.array_equal(auto, render_bar4(win, height=5, device="cpu"))
        return
    lines = [r.getMessage() for r in caplog.records if "render on the CPU" in r.getMessage()]
    assert len(lines) == 1 and "GPU path unavailable" in lines[0]
    assert np.array_equal(auto, render_bar4(win, height=5, device="cpu"))
    from candleflow.errors import ConfigError

    with pytest.raises(ConfigError, match="images.device=gpu but no GPU"):
        render_bar4(win, height=5, device="gpu")


@pytest.mark.parametrize("fmt", ["hdf5", "zarr", "npz"])
def test_streamed_in_several_writes_equals_one_write_and_a_failure_keeps_nothing(tmp_path, fmt):
    from candleflow.images.store import ImageWriter

    rng = np.random.default_rng(2)
    c = 100 + rng.normal(0, 1, (600, 20)).cumsum(1)
    images = render_jkx(np.stack([c, c + 1, c - 1, c + 0.5, rng.uniform(1, 2, (600, 20))], axis=2))
    labels = rng.integers(0, 3, 600).astype(np.int8)
    times = np.arange(600, dtype=np.int64)
    target = tmp_path / f"s.{ {'hdf5': 'h5', 'zarr': 'zarr', 'npz': 'npz'}[fmt] }"
    with ImageWriter(target, 600, images.shape[1:], ["X"], fmt) as w:
        for lo in (0, 100, 357):  # uneven batches across Zarr's 256-image shards
            hi = {0: 100, 100: 357, 357: 600}[lo]
            w.write(images[lo:hi], labels[lo:hi], times[lo:hi], np.zeros(hi - lo, np.int16))
    r = ImageReader(target)
    got, lab, extra = r[np.arange(600)]
    assert np.array_equal(got, images) and np.array_equal(lab, labels) and np.array_equal(extra["end_time"], times)
    one, l1, _ = r[451]
    assert np.array_equal(one, images[451]) and l1 == labels[451]
    failed = tmp_path / f"f{target.suffix}"
    with pytest.raises(RuntimeError, match="renderer broke"):
        with ImageWriter(failed, 600, images.shape[1:], ["X"], fmt) as w:
            w.write(images[:300], labels[:300], times[:300], np.zeros(300, np.int16))
            raise RuntimeError("renderer broke")
    with pytest.raises(Exception, match="300 images written, 600 expected"):
        with ImageWriter(failed, 600, images.shape[1:], ["X"], fmt) as w:
            w.write(images[:300], labels[:300], times[:300], np.zeros(300, np.int16))
    assert not failed.exists() and sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_images_are_rendered_and_written_in_bounded_memory(tmp_path):
    """Peak traced memory of write_image_dataset does not grow with the number of images: 4x the
    images, about the same peak (numpy's allocations are traced)."""
    import tracemalloc

    from candleflow.config import load_config
    from candleflow.dataset.prepare import prepare
    from candleflow.images.write import BATCH_BYTES, write_image_dataset

    prep = prepare(load_config(None, ["source.n_bars=3000"]))
    cfg = prep.config.images.model_copy(update={"layout": "bar4", "bars": 100, "height": 500})
    peaks = []
    for n in (400, 1600):
        tracemalloc.start()
        written = write_image_dataset(prep, cfg, tmp_path / f"n{n}.h5", limit=n)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert written.count == n
    image_bytes = 500 * 400
    assert peaks[1] < 3 * BATCH_BYTES and peaks[1] < 1600 * image_bytes / 2  # never all images at once
    assert peaks[1] < 1.5 * peaks[0]
    r = ImageReader(tmp_path / "n1600.h5")
    assert len(r) == 1600 and r[1599][0].shape == (500, 400)


def test_shuffled_loader_over_a_stored_file(tmp_path):
    from candleflow.models.loaders import stored_image_loader

    rng = np.random.default_rng(3)
    c = 100 + rng.normal(0, 1, (50, 20)).cumsum(1)
    images = render_jkx(np.stack([c, c + 1, c - 1, c + 0.5, rng.uniform(1, 2, (50, 20))], axis=2))
    labels = (np.arange(50) % 3).astype(np.int8)
    write_images(tmp_path / "s.h5", images, labels, np.arange(50), ["X"])
    loader = stored_image_loader(tmp_path / "s.h5", batch_size=16, seed=4)
    seen, orders = [], []
    for _epoch in range(2):
        order = []
        for i in range(len(loader)):
            x, y = loader[i]
            assert x.shape[1:] == (64, 60, 1) and x.dtype == np.float32 and x.max() <= 1.0
            for img, onehot in zip(x, y):
                k = int(np.flatnonzero((images == np.round(img[..., 0] * 255)).all(axis=(1, 2)))[0])
                assert onehot.argmax() == labels[k]
                order.append(k)
        orders.append(order)
        seen.append(sorted(order))
        loader.on_epoch_end()
    assert seen[0] == seen[1] == list(range(50)) and orders[0] != orders[1]  # every image once, new order


def test_a_yaml_only_image_run_writes_where_images_out_says(tmp_path):
    """images.out in the config file places the images; nothing else on the command line."""
    import subprocess
    import sys

    (tmp_path / "c.yaml").write_text(
        "source: {n_bars: 400}\ndataset: {window: 20}\nlabels: {horizon: 8}\n"
        "images: {format: npz, layout: jkx, bars: 20, out: charts/jkx.npz}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "candleflow.cli", "images", "--config", "c.yaml", "--limit", "16"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    with np.load(tmp_path / "charts" / "jkx.npz", allow_pickle=False) as z:
        assert z["images"].shape[0] == 16
    assert not (tmp_path / "images").exists()


def test_stored_images_read_back_with_the_ohlc_windows_behind_them(tmp_path, tiny_config):
    """ImageReader.windows(idx): the bars each stored image was drawn from, re-read from the
    recorded source with its fingerprint checked; a changed source is a one-line error."""
    import shutil

    import pytest

    from candleflow.dataset.prepare import prepare
    from candleflow.errors import DataError
    from candleflow.images.store import ImageReader
    from candleflow.images.write import write_image_dataset
    from conftest import BINANCE

    data = tmp_path / "d"
    data.mkdir()
    for m in ("01", "02"):
        shutil.copy(BINANCE / f"monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-{m}.zip", data)
    cfg = tiny_config("source.kind=files", f"source.paths=[{data}/*.zip]", "images.format=npz", "images.layout=jkx")
    prep = prepare(cfg)
    written = write_image_dataset(prep, cfg.images, tmp_path / "imgs.npz", limit=20)
    reader = ImageReader(written.out)
    ohlc = reader.windows([0, 7])
    _, _, extra = reader[[0, 7]]
    for row, t in zip(ohlc, extra["end_time"]):
        end = int(np.searchsorted(prep.candles.open_time, t))
        assert row.shape == (cfg.images.bars, 4) and row[-1, 3] == prep.candles.close[end]
        np.testing.assert_array_equal(row[:, 0], prep.candles.open[end - cfg.images.bars + 1 : end + 1])
    assert reader.windows(3).shape == (cfg.images.bars, 4)
    (data / "BTCUSDT-1h-2024-02.zip").unlink()  # the source changed since the images were written
    with pytest.raises(DataError, match="the recorded source now gives other candles"):
        ImageReader(written.out).windows([0])


def _bar4_images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = 100 + rng.normal(0, 1, (n, 20)).cumsum(1)
    win = np.stack([c, c + 1, c - 1, c + 0.5], axis=2)
    return render_bar4(win, height=50)


@pytest.mark.parametrize(
    "fmt,compression", [("hdf5", "bits"), ("hdf5", "gzip"), ("hdf5", "lz4"), ("zarr", "gzip"), ("npz", "gzip")]
)
def test_random_batches_read_what_was_written(tmp_path, fmt, compression):
    """The batch readers (raw HDF5 chunks decoded on every core, Zarr shards read directly) give
    exactly the images written, in the order asked, duplicates included, across shards."""
    images = _bar4_images(600)  # more than two Zarr shards of 256
    n = len(images)
    path = tmp_path / {"hdf5": "s.h5", "zarr": "s.zarr", "npz": "s.npz"}[fmt]
    write_images(
        path, images, np.zeros(n, np.int8), np.arange(n, dtype=np.int64), ["X"], fmt=fmt, compression=compression
    )
    r = ImageReader(path)
    idx = np.random.default_rng(1).integers(0, n, 300)
    idx[:3] = [599, 0, 599]
    got, _, extra = r[idx]
    assert np.array_equal(got, images[idx]) and extra["end_time"].tolist() == idx.tolist()
    assert np.array_equal(r[257][0], images[257])
    scaled, labels = r.unit_float(idx)  # what the loader gives a network: float32 in [0, 1], same order
    assert scaled.dtype == np.float32 and np.array_equal(scaled, images[idx] / np.float32(255))
    assert labels.tolist() == [0] * idx.size


def test_bit_packed_images_open_in_plain_h5py_and_other_values_are_refused(tmp_path):
    """The default HDF5 keeping (issue 41: stored images read slower than drawing them): one bit
    per pixel, which plain h5py reads and np.unpackbits restores; a pixel other than 0 or 255 is
    refused in one line, and nothing is left behind."""
    import subprocess
    import sys

    from candleflow.errors import DataError

    images = _bar4_images(20)
    n = len(images)
    write_images(tmp_path / "bits.h5", images, np.zeros(n, np.int8), np.arange(n), ["X"])
    plain = (
        "import sys, h5py, numpy as np; f = h5py.File(sys.argv[1], 'r'); d = f['images']; "
        "x = np.unpackbits(d[7], axis=-1, count=int(d.attrs['width'])) * 255; "
        "print(d.attrs['packing'], d.shape[1:], int(x.astype(np.int64).sum()))"
    )
    out = subprocess.run([sys.executable, "-c", plain, str(tmp_path / "bits.h5")], capture_output=True, text=True)
    h, w = images.shape[1:]
    assert out.stdout.split() == ["bits", f"({h},", f"{(w + 7) // 8})", str(int(images[7].astype(np.int64).sum()))]
    grey = images.copy()
    grey[4, 2, 3] = 128
    with pytest.raises(DataError, match=r"^image 4: pixel value 128 at row 2, column 3; images.compression bits"):
        write_images(tmp_path / "grey.h5", grey, np.zeros(n, np.int8), np.arange(n), ["X"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bits.h5"]
    # a store from elsewhere whose width does not fit its packed rows: one line, no uninitialised pixels
    import shutil

    import h5py

    shutil.copy(tmp_path / "bits.h5", tmp_path / "hostile.h5")
    with h5py.File(tmp_path / "hostile.h5", "r+") as f:
        f["images"].attrs["width"] = 999
    with pytest.raises(DataError, match=r"hostile.h5: bit-packed images of \d+ bytes a row cannot be 999 pixels wide"):
        ImageReader(tmp_path / "hostile.h5").unit_float(np.arange(3))


def test_gzip_hdf5_images_open_in_plain_h5py_and_lz4_reads_without_the_plugin(tmp_path):
    import subprocess
    import sys

    images = _bar4_images(20)
    n = len(images)
    for compression in ("gzip", "lz4"):
        write_images(
            tmp_path / f"{compression}.h5", images, np.zeros(n, np.int8), np.arange(n), ["X"], compression=compression
        )
    plain = (
        "import sys, h5py, numpy as np; f = h5py.File(sys.argv[1], 'r'); x = f['images'][7]; "
        "assert 'hdf5plugin' not in sys.modules; print(int(x.astype(np.int64).sum()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", plain, str(tmp_path / "gzip.h5")], capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == int(images[7].astype(np.int64).sum())
    # candleflow decodes LZ4 chunks itself: a machine without hdf5plugin still reads its own files
    blocked = (
        "import sys; sys.modules['hdf5plugin'] = None; import numpy as np; "
        "from candleflow.images.store import ImageReader; r = ImageReader(sys.argv[1]); "
        "print(int(r[np.array([7, 3])][0].astype(np.int64).sum()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", blocked, str(tmp_path / "lz4.h5")], capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == int(images[[7, 3]].astype(np.int64).sum())


def test_an_npz_store_opens_lazily_and_a_large_one_is_refused_in_one_line(tmp_path, monkeypatch):
    from candleflow.errors import DataError
    from candleflow.images import store

    images = _bar4_images(10)
    write_images(tmp_path / "s.npz", images, np.zeros(10, np.int8), np.arange(10), ["X"], fmt="npz")
    monkeypatch.setattr(store, "NPZ_MAX_BYTES", 1000)
    r = ImageReader(tmp_path / "s.npz")  # opening reads the header only
    assert len(r) == 10
    with pytest.raises(DataError, match=r"s\.npz: 0\.0 GB of NPZ images, which can only be read whole .* hdf5 or zarr"):
        r[0]
