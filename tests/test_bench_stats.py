"""The bench statistics against hand-computed cases (artifact vs FP32 reference, paired)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from edge_fgic.bench.stats import (
    accuracy_metrics,
    agreement,
    confusable_pair_drift,
    drift_csv_rows,
    mcnemar,
    paired_bootstrap_drop,
    per_class_drift,
)


def paired(b: int, c: int, both_right: int = 0, both_wrong: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ref/artifact correctness with b = ref-only right, c = artifact-only right (shuffled)."""
    ref = np.array([1] * b + [0] * c + [1] * both_right + [0] * both_wrong, dtype=bool)
    art = np.array([0] * b + [1] * c + [1] * both_right + [0] * both_wrong, dtype=bool)
    perm = np.random.default_rng(123).permutation(len(ref))
    return ref[perm], art[perm]


# ------------------------------------------------------------------ accuracy_metrics


def test_accuracy_metrics_fewer_than_five_classes() -> None:
    # C = 4 (< 5, so "top5" is top-4 = 100%). Class 3 is never a label nor a prediction.
    logits = np.array(
        [
            [3, 1, 2, -9],  # y=0 pred 0  right
            [1, 3, 2, -9],  # y=2 pred 1  wrong
            [2, 1, 3, -9],  # y=2 pred 2  right
            [1, 2, 3, -9],  # y=1 pred 2  wrong
            [1, 0, 2, -9],  # y=0 pred 2  wrong
        ],
        dtype=np.float32,
    )
    labels = np.array([0, 2, 2, 1, 0])
    m = accuracy_metrics(logits, labels, num_classes=4)
    assert m["n"] == 5
    assert m["top1"] == pytest.approx(40.0)  # 2 of 5
    assert m["top5"] == pytest.approx(100.0)  # k = min(5, 4) = 4 covers every class
    # F1 = 2TP / (support + predicted):
    #   class 0: TP 1, support 2, predicted 1 -> 2/3
    #   class 1: TP 0                         -> 0
    #   class 2: TP 1, support 2, predicted 3 -> 2/5
    #   class 3: no support, never predicted  -> excluded (else the mean would be over 4)
    assert m["macro_f1"] == pytest.approx(100.0 * (2 / 3 + 0 + 2 / 5) / 3)  # 35.556


def test_accuracy_metrics_more_than_five_classes() -> None:
    # C = 7, k = 5.
    logits = np.zeros((3, 7))
    logits[0] = [6, 5, 4, 3, 2, 1, 0]  # y=6: ranked last (7th)  -> not top-1, not top-5; pred 0
    logits[1, [3, 5]] = [5, 9]  # y=3: ranked 2nd            -> top-5 only;             pred 5
    logits[2, 2] = 9  # y=2: ranked 1st            -> top-1 and top-5;       pred 2
    m = accuracy_metrics(logits, np.array([6, 3, 2]))
    assert m["top1"] == pytest.approx(100 / 3)
    assert m["top5"] == pytest.approx(200 / 3)
    # Active classes: labels {2, 3, 6} U predictions {0, 2, 5} = 5 classes; only class 2 has F1 = 1.
    assert m["macro_f1"] == pytest.approx(20.0)


def test_accuracy_metrics_nan_row_is_wrong_not_a_crash() -> None:
    logits = np.array([[np.nan, 1.0, 0.0], [0.0, 1.0, 0.0]])
    m = accuracy_metrics(logits, np.array([0, 1]))  # NaN ranks last: row 0 predicts 1
    assert m["top1"] == pytest.approx(50.0)
    assert accuracy_metrics(np.zeros((0, 3)), np.array([], dtype=int)) == {"top1": 0.0, "top5": 0.0, "macro_f1": 0.0,
                                                                           "n": 0}


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_identical_predictions_give_a_zero_interval() -> None:
    ref = np.random.default_rng(0).random(100) < 0.7
    out = paired_bootstrap_drop(ref, ref.copy())
    assert out == {"drop": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n_boot": 2000, "level": 0.95}


def test_bootstrap_artifact_wrong_on_ten_of_a_hundred() -> None:
    ref, art = paired(b=10, c=0, both_right=70, both_wrong=20)  # 80% vs 70%
    out = paired_bootstrap_drop(ref, art)
    assert out["drop"] == pytest.approx(10.0)
    assert 0.0 < out["ci_low"] < 10.0 < out["ci_high"]
    # The drop on a resample is 100 * Bin(100, 0.1) / 100, whose 2.5% / 97.5% quantiles are 5 / 16.
    assert out["ci_low"] == pytest.approx(5.0, abs=1.01)
    assert out["ci_high"] == pytest.approx(16.0, abs=1.01)


def test_bootstrap_matches_explicit_index_resampling() -> None:
    # The implementation draws cell counts (multinomial); this is the textbook version.
    ref, art = paired(b=30, c=12, both_right=120, both_wrong=38)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(ref), size=(4000, len(ref)))
    drops = 100.0 * (ref[idx].mean(axis=1) - art[idx].mean(axis=1))
    lo, hi = np.percentile(drops, [2.5, 97.5])
    out = paired_bootstrap_drop(ref, art, n_boot=4000)
    assert out["drop"] == pytest.approx(9.0)  # (30 - 12) / 200
    assert out["ci_low"] == pytest.approx(lo, abs=0.6)
    assert out["ci_high"] == pytest.approx(hi, abs=0.6)


def test_bootstrap_seed_determinism_and_level() -> None:
    ref, art = paired(b=37, c=21, both_right=800, both_wrong=142)
    first = paired_bootstrap_drop(ref, art, seed=3)
    assert paired_bootstrap_drop(ref, art, seed=3) == first
    bounds = {tuple(paired_bootstrap_drop(ref, art, seed=s)[k] for k in ("ci_low", "ci_high")) for s in range(5)}
    assert len(bounds) > 1
    narrow = paired_bootstrap_drop(ref, art, seed=3, level=0.5)
    assert first["ci_low"] <= narrow["ci_low"] <= narrow["ci_high"] <= first["ci_high"]
    assert narrow["level"] == 0.5


def test_bootstrap_large_n_and_empty() -> None:
    ref, art = paired(b=500, c=300, both_right=40_000, both_wrong=9_200)  # N = 50k
    out = paired_bootstrap_drop(ref, art, n_boot=10_000)
    assert out["drop"] == pytest.approx(0.4)
    assert out["ci_low"] < 0.4 < out["ci_high"]
    assert paired_bootstrap_drop(np.array([], bool), np.array([], bool)) == {
        "drop": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n_boot": 2000, "level": 0.95,
    }  # fmt: skip


# ------------------------------------------------------------------ McNemar


def test_mcnemar_exact_small_table() -> None:
    ref, art = paired(b=10, c=2, both_right=50, both_wrong=8)
    out = mcnemar(ref, art)
    # Two-sided: 2 * P(X <= 2 | n=12, p=1/2) = 2 * (1 + 12 + 66) / 4096 = 158 / 4096
    assert out == {"b": 10, "c": 2, "statistic": None, "p_value": pytest.approx(158 / 4096), "method": "exact"}
    assert out["p_value"] == pytest.approx(0.0385742, abs=1e-7)
    assert out["p_value"] == pytest.approx(stats.binomtest(10, 12, 0.5).pvalue)


def test_mcnemar_chi_square_large_table() -> None:
    ref, art = paired(b=40, c=20, both_right=300)
    out = mcnemar(ref, art)
    stat = (abs(40 - 20) - 1) ** 2 / 60  # 361 / 60 = 6.0167
    assert out["method"] == "chi2-cc"
    assert (out["b"], out["c"]) == (40, 20)
    assert out["statistic"] == pytest.approx(6.016667, abs=1e-6)
    assert out["p_value"] == pytest.approx(stats.chi2.sf(stat, 1))
    assert out["p_value"] == pytest.approx(math.erfc(math.sqrt(stat / 2)))  # chi2(1) tail, no scipy
    assert round(out["p_value"], 4) == 0.0142


def test_mcnemar_switches_at_25_and_handles_no_discordance() -> None:
    assert mcnemar(*paired(b=20, c=4))["method"] == "exact"  # 24
    assert mcnemar(*paired(b=20, c=5))["method"] == "chi2-cc"  # 25
    assert mcnemar(*paired(b=15, c=15))["p_value"] == pytest.approx(1.0)  # |b - c| - 1 clamps at 0
    same = np.array([True, False, True])
    assert mcnemar(same, same) == {"b": 0, "c": 0, "statistic": None, "p_value": 1.0, "method": "exact"}
    assert mcnemar(np.array([], bool), np.array([], bool))["p_value"] == 1.0


# ------------------------------------------------------------------ agreement and drift

CLASSES = ["ant", "bee", "cat"]
# 4 images per class. The artifact ruins "bee" (it drifts into "cat"), hurts "ant" and "cat" a bit.
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
REF = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 1])  # ant 4/4, bee 3/4, cat 3/4
ART = np.array([0, 0, 0, 1, 2, 2, 1, 2, 2, 2, 1, 1])  # ant 3/4, bee 1/4, cat 2/4


def test_agreement() -> None:
    assert agreement(REF, ART) == pytest.approx(100 * 8 / 12)  # changed: images 3, 4, 5, 10
    assert agreement(REF, REF) == 100.0
    assert agreement([], []) == 0.0


def test_per_class_drift_worst_class_first() -> None:
    rows = per_class_drift(REF, ART, LABELS, CLASSES)
    # bee: 75 -> 25 (-50, flips 2); ant: 100 -> 75 (-25, flips 1); cat: 75 -> 50 (-25, flips 1).
    # ant and cat tie on delta -> by name.
    assert [r["class"] for r in rows] == ["bee", "ant", "cat"]
    assert rows[0] == {"class": "bee", "n": 4, "ref_acc": 75.0, "art_acc": 25.0, "delta": -50.0, "flips": 2}
    assert rows[1] == {"class": "ant", "n": 4, "ref_acc": 100.0, "art_acc": 75.0, "delta": -25.0, "flips": 1}
    assert rows[2] == {"class": "cat", "n": 4, "ref_acc": 75.0, "art_acc": 50.0, "delta": -25.0, "flips": 1}
    # The tie-break is the name, not the class index: rename so the two orders disagree.
    renamed = per_class_drift(REF, ART, LABELS, ["zebra", "bee", "ant"])
    assert [r["class"] for r in renamed] == ["bee", "ant", "zebra"]
    # A class without test images still gets a row (n = 0, zeros).
    empty = per_class_drift(REF, ART, LABELS, CLASSES + ["dog"])
    assert {"class": "dog", "n": 0, "ref_acc": 0.0, "art_acc": 0.0, "delta": 0.0, "flips": 0} in empty


def test_confusable_pair_drift_finds_the_pair_that_got_worse() -> None:
    rows = confusable_pair_drift(REF, ART, LABELS, CLASSES)
    # {bee, cat}: ref bee->cat 1 + cat->bee 1 = 2; art bee->cat 3 + cat->bee 2 = 5; delta 3.
    # {ant, bee}: ref 0; art ant->bee 1; delta 1.  {ant, cat}: 0 -> 0, left out.
    assert rows == [
        {"a": "bee", "b": "cat", "ref_confusions": 2, "art_confusions": 5, "delta": 3},
        {"a": "ant", "b": "bee", "ref_confusions": 0, "art_confusions": 1, "delta": 1},
    ]
    assert confusable_pair_drift(REF, ART, LABELS, CLASSES, top=1) == rows[:1]
    # Reversed roles: confusion only shrank, so nothing is reported.
    assert confusable_pair_drift(ART, REF, LABELS, CLASSES) == []


def test_confusable_pair_ties_sort_by_name() -> None:
    # Reference perfect; the artifact adds one 0<->1 and one 1<->2 confusion (delta 1 each).
    labels = np.array([0, 0, 1, 1, 2, 2])
    art = np.array([1, 0, 1, 1, 1, 2])
    rows = confusable_pair_drift(labels, art, labels, ["zebra", "bee", "ant"])
    # "a" is the lower class index; on equal delta the names decide, not the indices.
    assert [(r["a"], r["b"], r["delta"]) for r in rows] == [("bee", "ant", 1), ("zebra", "bee", 1)]


def test_drift_csv_rows_rounds() -> None:
    drift = [{"class": "x", "n": 3, "ref_acc": 200 / 3, "art_acc": 100 / 3, "delta": -100 / 3, "flips": 1}]
    header, rows = drift_csv_rows(drift)
    assert header == ["class", "n", "ref_acc", "art_acc", "delta", "flips"]
    assert rows == [["x", 3, 66.67, 33.33, -33.33, 1]]
    header, rows = drift_csv_rows(per_class_drift(REF, ART, LABELS, CLASSES))
    assert rows[0] == ["bee", 4, 75.0, 25.0, -50.0, 2]
    with pytest.raises(ValueError, match="lacks"):
        drift_csv_rows([{"class": "x"}])


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: accuracy_metrics(np.zeros(3), np.zeros(3, int)), "logits must be"),
        (lambda: accuracy_metrics(np.zeros((3, 2)), np.zeros(2, int)), "same length"),
        (lambda: accuracy_metrics(np.zeros((3, 2)), np.zeros(3, int), num_classes=5), "num_classes"),
        (lambda: accuracy_metrics(np.zeros((2, 2)), np.array([0, 2])), r"\[0, 1\]"),
        (lambda: accuracy_metrics(np.zeros((2, 2)), np.array([0.0, 0.5])), "integer"),
        (lambda: paired_bootstrap_drop(np.ones(3, bool), np.ones(4, bool)), "same length"),
        (lambda: paired_bootstrap_drop(np.ones((2, 2), bool), np.ones((2, 2), bool)), "1-D"),
        (lambda: paired_bootstrap_drop(np.array([0, 2]), np.array([0, 1])), "boolean"),
        (lambda: paired_bootstrap_drop(np.ones(3, bool), np.ones(3, bool), level=95), "level"),
        (lambda: paired_bootstrap_drop(np.ones(3, bool), np.ones(3, bool), n_boot=0), "n_boot"),
        (lambda: mcnemar(np.ones(3, bool), np.ones(2, bool)), "same length"),
        (lambda: agreement(np.zeros((2, 1), int), np.zeros((2, 1), int)), "1-D"),
        (lambda: per_class_drift(REF, ART[:-1], LABELS, CLASSES), "same length"),
        (lambda: per_class_drift(REF, ART, LABELS, CLASSES[:2]), "ref_pred must lie"),
        (lambda: confusable_pair_drift(REF, ART, LABELS, []), "classes"),
    ],
)
def test_bad_inputs_raise_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
