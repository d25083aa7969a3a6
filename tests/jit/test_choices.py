"""Runtime-terms evaluation, the tie rule and the fallback rule (keras_trainer.jit.model.choices)."""

import numpy as np
import pytest

from keras_trainer.errors import DataError
from keras_trainer.jit.model.choices import (
    apply_fallback,
    choose_fallback_threshold,
    labels_from_times,
    runtime_report,
    speeds,
    times_matrix,
)
from keras_trainer.jit.strategies import STRATEGY_NAMES, tie_preference

pytestmark = pytest.mark.one_backend  # no Keras code runs here

NAMES = ["O0", "O1", "O2"]
# Row 0: O2 fastest by far; row 1: O1 and O2 within 2 % (a tie); row 2: O0 fastest.
TIMES = np.array([[100.0, 40.0, 10.0], [50.0, 20.0, 19.8], [5.0, 6.0, 8.0]])


def test_tie_rule_gives_a_tie_to_the_cheapest_to_compile():
    assert labels_from_times(TIMES, NAMES, 0.03).tolist() == [2, 1, 0]
    assert labels_from_times(TIMES, NAMES, 0.0).tolist() == [2, 2, 0]


def test_tie_rule_follows_the_compile_rank_not_the_class_order():
    assert tie_preference(STRATEGY_NAMES) == ["O0", "O1", "O3-scalar", "O2", "O3"]
    times = np.array([[9.0, 9.0, 5.0, 5.0, 5.05]])  # O2, O3 and O3-scalar tie
    assert labels_from_times(times, STRATEGY_NAMES, 0.03, tie_preference(STRATEGY_NAMES)) == [4]
    assert labels_from_times(times, STRATEGY_NAMES, 0.03) == [2]


def test_times_matrix_names_the_sample_and_strategy_of_a_bad_time():
    assert times_matrix([{"O0": 3, "O1": 2, "O2": 1}], NAMES).tolist() == [[3.0, 2.0, 1.0]]
    with pytest.raises(DataError, match=r"optimization_results\[1\]: no time for strategy 'O2'"):
        times_matrix([{"O0": 3, "O1": 2, "O2": 1}, {"O0": 3, "O1": 2}], NAMES)
    with pytest.raises(DataError, match=r"\[0\]\['O1'\]: time must be finite and > 0"):
        times_matrix([{"O0": 3, "O1": 0, "O2": 1}], NAMES)
    with pytest.raises(DataError, match="expected a dict"):
        times_matrix([{"O0": 3, "O1": 1, "O2": 1}, 2], NAMES)


def test_speeds_are_relative_to_the_fastest():
    np.testing.assert_allclose(speeds(TIMES)[0], [0.1, 0.25, 1.0])


def test_runtime_report_figures_by_hand():
    report = runtime_report([1, 1, 0], TIMES, NAMES, labels=[2, 1, 0], majority_class=2)
    # chosen 40 + 20 + 5 = 65; oracle 10 + 19.8 + 5 = 34.8
    assert report["regret"] == pytest.approx(65 / 34.8)
    assert report["geomean_regret"] == pytest.approx((4.0 * (20 / 19.8) * 1.0) ** (1 / 3))
    assert report["accuracy"] == pytest.approx(2 / 3)
    # fixed totals: O0 155, O1 66, O2 37.8 -> O2 is the best fixed strategy
    assert report["best_fixed"] == "O2"
    assert report["fixed"]["O0"]["speedup"] == pytest.approx(155 / 65)
    assert report["speedup_vs_best_fixed"] == pytest.approx(37.8 / 65)
    assert report["fixed"]["O2"]["regret"] == pytest.approx(37.8 / 34.8)
    assert report["majority"] == {
        "strategy": "O2",
        "accuracy": pytest.approx(1 / 3),
        "regret": pytest.approx(37.8 / 34.8),
        "geomean_regret": pytest.approx((1 * 19.8 / 19.8 * 8 / 5) ** (1 / 3)),
    }
    assert report["oracle_total"] == pytest.approx(34.8)


def test_runtime_report_rejects_mismatched_shapes():
    with pytest.raises(DataError, match="times of shape"):
        runtime_report([0, 1], TIMES, NAMES)


def test_fallback_replaces_unconfident_choices():
    probabilities = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    rule = {"strategy": "O2", "threshold": 0.5}
    assert apply_fallback(probabilities, rule, NAMES).tolist() == [0, 2]
    assert apply_fallback(probabilities, None, NAMES).tolist() == [0, 0]


def test_fallback_threshold_is_chosen_for_the_lowest_total_time():
    probabilities = np.array([[0.1, 0.2, 0.7], [0.45, 0.3, 0.25], [0.9, 0.05, 0.05]])
    # The confident rows (0.7, 0.9) are right; the 0.45 row would pick O0 (50 vs 19.8).
    # Row 0 picks O2 either way, so 0.7 and 0.9 tie and the safer (higher) one wins.
    threshold = choose_fallback_threshold(probabilities, TIMES, None, fallback=2)
    assert threshold == pytest.approx(0.9)
    choice = apply_fallback(probabilities, {"strategy": "O2", "threshold": threshold}, NAMES)
    assert choice.tolist() == [2, 2, 0]


def test_fallback_threshold_needs_a_saving_that_survives_resampling():
    # 40 rows where the fallback (O2) is right, and one confident row where the
    # model's O0 saves 3 units: the lowest validation time lets the model choose
    # there, but most bootstrap resamples miss that single row, so with
    # confidence the rule keeps to the fallback everywhere (threshold 1).
    times = np.array([[10.0, 10.0, 10.0]] * 40 + [[5.0, 9.0, 8.0]])
    probabilities = np.array([[0.2, 0.2, 0.6]] * 40 + [[0.9, 0.05, 0.05]])
    assert choose_fallback_threshold(probabilities, times, None, fallback=2) == pytest.approx(0.9)
    assert choose_fallback_threshold(
        probabilities, times, None, fallback=2, confidence=0.9
    ) == pytest.approx(1.0)
    # Twenty such rows are a saving in nearly every resample: the model keeps them.
    times = np.array([[10.0, 10.0, 10.0]] * 40 + [[5.0, 9.0, 8.0]] * 20)
    probabilities = np.array([[0.2, 0.2, 0.6]] * 40 + [[0.9, 0.05, 0.05]] * 20)
    assert choose_fallback_threshold(
        probabilities, times, None, fallback=2, confidence=0.9
    ) == pytest.approx(0.9)


def _families(wins: int, losses: int, rows: int = 10):
    """Validation rows of `wins + losses` families, `rows` each: in the winning
    families the confident model's O0 saves 3 units on every row, in the losing
    ones it costs 3; elsewhere (low confidence) the fallback O2 is as good."""
    saving, costing = [5.0, 9.0, 8.0], [11.0, 9.0, 8.0]
    times, groups = [], []
    for family in range(wins + losses):
        times += [saving if family < wins else costing] * rows
        groups += [f"family_{family}"] * rows
    probabilities = np.array([[0.9, 0.05, 0.05]] * len(times))
    # Rows where only the fallback is used change nothing, and no family.
    times += [[10.0, 10.0, 10.0]] * 5
    groups += ["other"] * 5
    probabilities = np.vstack([probabilities, [[0.2, 0.2, 0.6]] * 5])
    return probabilities, np.array(times), groups


@pytest.mark.parametrize(
    "wins, losses, lets_the_model_choose",
    [
        (4, 0, False),  # p = 1/16 > 0.05: four families are not enough
        (5, 0, True),  # p = 1/32
        (8, 1, True),  # p = 10/512
        (7, 2, False),  # p = 46/512: the saving is there, the evidence is not
    ],
)
def test_with_groups_the_threshold_must_pass_a_sign_test_over_them(
    wins, losses, lets_the_model_choose
):
    probabilities, times, groups = _families(wins, losses)
    threshold = choose_fallback_threshold(
        probabilities, times, None, fallback=2, confidence=0.95, groups=groups
    )
    assert threshold == pytest.approx(0.9 if lets_the_model_choose else 1.0)
    # Without groups, each row counts as evidence: the row bootstrap lets the
    # model choose in every case, the 4-family one included.
    assert choose_fallback_threshold(
        probabilities, times, None, fallback=2, confidence=0.95
    ) == pytest.approx(0.9)


def test_groups_must_match_the_rows():
    probabilities, times, groups = _families(5, 0)
    with pytest.raises(DataError, match="groups has 54 entries but there are 55 rows"):
        choose_fallback_threshold(
            probabilities, times, None, fallback=2, confidence=0.95, groups=groups[1:]
        )
