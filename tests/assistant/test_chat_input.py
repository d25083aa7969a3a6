"""`chat` names bad input: a beam too wide, standard input that is not UTF-8."""

import io

from keras_trainer.cli import main


def test_a_beam_width_beyond_64_is_named_before_the_model_loads(capsys):
    assert main(["chat", "missing.keras", "hi", "--method", "beam", "--beam-width", "5000"]) == 2
    assert "--beam-width: expected 1 to 64, got 5000" in capsys.readouterr().err


def test_standard_input_that_is_not_utf8_is_named_by_line(monkeypatch):
    import pytest

    from keras_trainer.assistant.cli import _read_line
    from keras_trainer.errors import DataError

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"hello\n\xff\xfe\n")))
    assert _read_line(1) == "hello\n"
    with pytest.raises(DataError, match="standard input line 2: not UTF-8 text"):
        _read_line(2)
