"""`keras-trainer train/evaluate/predict/chat` for the assistant."""

import json
import subprocess
import sys

import pytest

from keras_trainer.cli import main
from tests.conftest import ROOT, subprocess_env


def test_assistant_trains_evaluates_predicts_and_chats(tmp_path, capsys):
    config = tmp_path / "assistant.json"
    config.write_text(
        json.dumps(
            {
                "embedding_dim": 16,
                "hidden_dim": 16,
                "max_length": 16,
                "dropout": 0.0,
                "learning_rate": 0.01,
                "batch_size": 32,
                "epochs": 2,
                "validation_split": 0.0,  # three pairs leave none to validate on
                "seed": 1,
            }
        )
    )
    pairs = [
        {"query": f"what is {w}?", "response": f"{w} is a word"} for w in ("alpha", "beta", "gamma")
    ]
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(pairs))
    model = tmp_path / "bot.keras"
    assert (
        main(
            [
                "train",
                str(config),
                "--data",
                str(data),
                "--output",
                str(model),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "exact match" in out
        and (tmp_path / "runs" / "assistant" / "version_0" / "model.keras").is_file()
    )
    assert (
        main(["evaluate", str(model), "--data", str(data), "--report", str(tmp_path / "r.json")])
        == 0
    )
    # Its own training pairs (no test file, no held-out part): scored, with a warning.
    assert f"{data} holds the pairs the model was trained on" in capsys.readouterr().err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["pairs"] == 3 and 0.0 <= report["exact_match"] <= 1.0
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(["what is alpha?", {"query": "what is beta?"}]))
    assert (
        main(
            ["predict", str(model), "--data", str(questions), "--output", str(tmp_path / "a.json")]
        )
        == 0
    )
    answers = json.loads((tmp_path / "a.json").read_text())
    assert [a["query"] for a in answers] == ["what is alpha?", "what is beta?"]
    capsys.readouterr()
    assert main(["chat", str(model), "what is gamma?"]) == 0
    one_shot = capsys.readouterr().out  # one answer line (two epochs may answer "")
    interactive = subprocess.run(  # noqa: PLW1510
        [sys.executable, "-m", "keras_trainer", "chat", str(model)],
        input="what is gamma?\n\n",
        env=subprocess_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert interactive.returncode == 0, interactive.stderr
    assert interactive.stdout == one_shot
    assert main(["chat", str(model), "   "]) == 2
    assert "query is empty" in capsys.readouterr().err


@pytest.mark.one_backend  # the CLI's default verbosity; Keras prints the lines alike on each backend
def test_train_prints_one_line_per_epoch_and_scores_a_test_file(tmp_path, capsys):
    config = tmp_path / "assistant.json"
    sizes = {"embedding_dim": 8, "hidden_dim": 8, "max_length": 8, "dropout": 0.0}
    sizes.update(tokenizer="word", copy_attention=False)  # the quickest model to build
    training = {"epochs": 2, "validation_split": 0.0, "early_stopping_patience": 0}
    config.write_text(json.dumps({**sizes, "training": training}))
    data, held_out = tmp_path / "qa.json", tmp_path / "held_out.json"
    data.write_text(json.dumps([{"query": "what is alpha?", "response": "a word"}] * 4))
    held_out.write_text(json.dumps([{"query": "what is beta?", "response": "a word"}] * 4))
    model = str(tmp_path / "bot.keras")
    command = ["train", str(config), "--data", str(data), "--runs-dir", str(tmp_path / "runs")]
    assert main([*command, "--test-data", str(held_out), "--output", model]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("Epoch ")] == [
        "Epoch 1/2",
        "Epoch 2/2",
    ]
    assert not any("\r" in line or "━" in line for line in lines)  # no progress bar
    # --test-data: the held-out file is scored, each exact-match variant named.
    assert f"on {held_out} (4 held-out pairs): exact match (byte for byte) " in out
    assert "exact match (tokenizer-normalized)" in out

    assert main(["evaluate", model]) == 0  # by default: the model's held-out file
    out = capsys.readouterr().out
    assert f"held-out split: 4 of 4 pairs of {held_out}" in out
    assert "exact match (byte for byte)" in out and "exact match (tokenizer-normalized)" in out


def _tiny_assistant(tmp_path):
    config = tmp_path / "assistant.json"
    sizes = {"embedding_dim": 8, "hidden_dim": 8, "max_length": 8, "dropout": 0.0}
    sizes.update(tokenizer="word", copy_attention=False)  # the quickest model to build
    training = {"epochs": 1, "validation_split": 0.0, "verbose": 0}
    config.write_text(json.dumps({**sizes, "training": training}))
    return str(config)


@pytest.mark.one_backend
def test_cross_validating_the_assistant_is_refused_with_the_alternative(tmp_path, capsys):
    assert main(["train", _tiny_assistant(tmp_path), "--cv", "3"]) == 2
    assert "--cv: the assistant is not cross-validated" in capsys.readouterr().err
