"""Metrics computed by hand, and baselines."""

import numpy as np
import pytest

from candleflow.evaluation.metrics import baseline_predictions, classification_metrics, decide, evaluate


def test_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 2, 0, 1])
    m = classification_metrics(y, p)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 1, 2]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    pc = m["per_class"]
    assert pc["SHORT"]["precision"] == pytest.approx(1 / 2) and pc["HOLD"]["precision"] == pytest.approx(2 / 4)
    assert pc["LONG"]["precision"] == 1.0 and pc["LONG"]["recall"] == pytest.approx(0.5)
    f1 = [2 * 0.5 * 0.5 / 1, 2 * 0.5 * 1 / 1.5, 2 * 1 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))


def test_baselines_and_edge():
    y_train = np.array([1] * 50 + [0] * 30 + [2] * 20)
    base = baseline_predictions(y_train, 1000, seed=3)
    assert (base["majority"] == 1).all() and (base["always_hold"] == 1).all()
    assert np.bincount(base["stratified"], minlength=3) / 1000 == pytest.approx([0.3, 0.5, 0.2], abs=0.05)
    y = np.array([0, 1, 2] * 100)
    out = evaluate(y, np.eye(3)[y], y_train)
    assert out["table"]["model"]["balanced_accuracy"] == 1.0
    assert out["table"]["majority"]["balanced_accuracy"] == pytest.approx(1 / 3)
    assert out["edge_balanced_accuracy"] == pytest.approx(
        1 - max(out["table"][k]["balanced_accuracy"] for k in ("majority", "always_hold", "stratified"))
    )


def test_decision_margin_holds_when_undecided():
    probs = np.array([[0.40, 0.20, 0.40], [0.50, 0.10, 0.40], [0.30, 0.30, 0.40], [0.2, 0.6, 0.2], [0.36, 0.3, 0.34]])
    assert decide(probs).tolist() == [0, 0, 2, 1, 0]
    assert decide(probs, 0.05).tolist() == [1, 0, 2, 1, 1]
    y = np.array([0, 0, 2, 1, 2])
    out = evaluate(y, probs, y, margin=0.05)
    assert out["table"]["model"]["accuracy"] == pytest.approx(3 / 5)
    assert out["table"]["model_argmax"]["accuracy"] == pytest.approx(4 / 5)
