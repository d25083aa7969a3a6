"""`rows_to_score`: what every family's `evaluate` scores, and when it warns."""

import pytest

from keras_trainer.core.evaluating.held_out import rows_to_score, split_record

pytestmark = pytest.mark.one_backend  # no Keras code runs here

SPLIT = split_record("data.csv", "abc", seed=0, test_split=0.3, test_rows=[8, 2, 5])


def test_the_model_s_own_data_is_scored_on_its_held_out_rows_only(capsys):
    assert rows_to_score(SPLIT, "abc", 10, "data.csv") == [2, 5, 8]
    captured = capsys.readouterr()
    assert "held-out split: 3 of 10 rows of data.csv" in captured.out and not captured.err


def test_all_rows_of_the_model_s_data_are_scored_with_a_warning(capsys):
    assert rows_to_score(SPLIT, "abc", 10, "data.csv", score_all=True) == list(range(10))
    assert "7 of these 10 rows were used to train the model" in capsys.readouterr().err


def test_other_data_is_scored_whole_without_a_warning(capsys):
    assert rows_to_score(SPLIT, "other", 4, "new.csv") == [0, 1, 2, 3]
    assert capsys.readouterr().err == ""


def test_training_data_of_a_model_tested_on_another_file_warns(capsys):
    split = split_record("test.csv", "test", 0, 1.0, [0, 1], trained_on="train")
    assert rows_to_score(split, "train", 5, "train.csv") == list(range(5))
    assert "train.csv holds the rows the model was trained on" in capsys.readouterr().err


def test_a_model_without_a_recorded_split_warns(capsys):
    assert rows_to_score(None, "abc", 2, "data.csv") == [0, 1]
    assert "records no held-out split" in capsys.readouterr().err
