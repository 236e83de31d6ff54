"""Windows are views, batches are exact, no window crosses a segment, splits purge."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.dataset.split import chronological_split
from candleflow.dataset.windows import WindowDataset, valid_window_ends


def make(n=200, f=3, segments=((0, 200),), seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, f)).astype(np.float32)
    labels = rng.integers(0, 3, n).astype(np.int8)
    return feats, labels, np.array(segments, dtype=np.int64)


def test_windows_are_views_and_gather_is_exact():
    feats, labels, segs = make()
    ds = WindowDataset.from_arrays(feats, labels, segs, window=10)
    assert len(ds) == 191 and ds.ends[0] == 9
    assert np.shares_memory(ds.window_view(5), feats)
    idx = np.array([0, 7, 190, 3])
    batch = ds.gather(idx)
    assert batch.shape == (4, 10, 3) and batch.dtype == np.float32 and batch.flags.c_contiguous
    for b, i in enumerate(idx):
        e = ds.ends[i]
        np.testing.assert_array_equal(batch[b], feats[e - 9 : e + 1])
    assert ds.labels_at(idx).tolist() == labels[ds.ends[idx]].tolist()


def test_nan_rows_and_missing_labels_excluded():
    feats, labels, segs = make(50)
    feats[20, 1] = np.nan
    labels[45] = -1
    ends = valid_window_ends(feats, labels, segs, 5)
    assert not any(20 <= e <= 24 for e in ends) and 45 not in ends and 19 in ends and 25 in ends


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(1, 299), max_size=6, unique=True), window=st.integers(1, 40))
def test_no_window_crosses_a_segment(cuts, window):
    bounds = [0, *sorted(cuts), 300]
    segs = np.array(list(zip(bounds[:-1], bounds[1:])))
    feats, labels, _ = make(300)
    ends = valid_window_ends(feats, labels, segs, window)
    seg_of = np.searchsorted(np.array(bounds[1:]), np.arange(300), side="right")
    for e in ends:
        assert seg_of[e - window + 1] == seg_of[e]
    # and every window that fits is there
    expected = sum(max(0, b - a - window + 1) for a, b in segs)
    assert len(ends) == expected


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 1000),
    horizon=st.integers(1, 30),
    embargo=st.integers(0, 10),
    val=st.floats(0.1, 0.4),
    test=st.sampled_from([0.0, 0.15]),
)
def test_no_training_label_reaches_validation(seed, horizon, embargo, val, test):
    rng = np.random.default_rng(seed)
    n = 500
    ends = np.sort(rng.choice(np.arange(20, n - horizon), size=300, replace=False))
    t1 = np.full(n, -1)
    t1[ends] = ends + rng.integers(1, horizon + 1, ends.size)
    sp = chronological_split(ends, t1, val, test, embargo)
    val_start = sp.starts["val"]
    assert all(t1[e] + embargo < val_start for e in ends[sp["train"]])
    assert ends[sp["train"]].max() < val_start <= ends[sp["val"]].min()
    if test:
        assert all(t1[e] + embargo < sp.starts["test"] for e in ends[sp["val"]])
    total = sum(p.size for p in sp.parts.values()) + sum(sp.purged.values())
    assert total == ends.size


def test_purge_counts_known_case():
    ends = np.arange(10, 20)
    t1 = np.zeros(30, dtype=int)
    t1[ends] = ends + 3  # each label looks 3 bars ahead
    sp = chronological_split(ends, t1, val_fraction=0.3)
    assert sp.starts["val"] == 17
    assert ends[sp["train"]].tolist() == [10, 11, 12, 13]  # 14..16 look into 17+
    assert sp.purged["train"] == 3


def test_a_dataset_you_can_index():
    """ds[i] is (window view, label); ds[a:b], ds[idx] and a boolean mask are gathered batches."""
    import pytest

    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = (np.arange(20) % 3).astype(np.int8)
    ds = WindowDataset(x, y, np.array([4, 6, 9, 19]), window=5)
    w, label = ds[1]
    assert np.shares_memory(w, x) and w.tolist() == x[2:7].tolist() and label == y[6]
    assert ds[-1][0].tolist() == x[15:20].tolist() and ds[-1][1] == y[19]
    batch, labels = ds[1:3]
    assert batch.shape == (2, 5, 2) and batch.tolist() == [x[2:7].tolist(), x[5:10].tolist()]
    assert labels.tolist() == [y[6], y[9]]
    same, _ = ds[np.array([True, False, True, False])]
    assert same.tolist() == [x[0:5].tolist(), x[5:10].tolist()]
    assert ds[[3, 0]][1].tolist() == [y[19], y[4]]
    assert len(ds) == 4 and len(list(ds)) == 4  # iterable, a view at a time
    with pytest.raises(IndexError, match="window 4 out of range for 4 windows"):
        ds[4]
    with pytest.raises(IndexError, match="out of range"):
        ds[[0, 9]]
