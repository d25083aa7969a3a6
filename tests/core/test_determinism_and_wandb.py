import csv
import time

import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training.determinism import determinism_enabled
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed


def _config(**overrides):
    data = {"epochs": 2, "verbose": 0, "early_stopping_patience": 0, "batch_size": 16}
    data.update(overrides)
    return TrainingConfig.from_dict(data)


def _run(x, y, **overrides):
    set_seed(11)
    model = build_model(ModelConfig(output_dim=5, hidden_layers=[16], dropout=0.2), (12,))
    history = fit(model, x, y, config=_config(**overrides))
    return model, history


def _data(rng):
    x = rng.normal(size=(96, 12)).astype("float32")
    return x, np.eye(5, dtype="float32")[(x[:, 0] > 0).astype(int)]


def test_deterministic_mode_turns_the_switches_on_and_reruns_are_bit_identical(rng):
    x, y = _data(rng)
    first, _ = _run(x, y, deterministic=True)
    assert determinism_enabled()
    second, _ = _run(x, y, deterministic=True)
    for a, b in zip(first.get_weights(), second.get_weights()):
        assert a.tobytes() == b.tobytes()


def test_wandb_logs_the_metrics_of_the_csv_log_offline(tmp_path, rng, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    x, y = _data(rng)
    runs = []
    original = wandb.init

    def init(**kwargs):
        run = original(**kwargs)
        runs.append(run)
        return run

    monkeypatch.setattr(wandb, "init", init)
    _run(x, y, logging={"directory": str(tmp_path), "wandb": True})
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    (run,) = runs
    assert run.settings.mode == "offline"
    # W&B's service process writes the run file; on a loaded machine the last
    # records can land a moment after `finish()` returns.
    deadline = time.monotonic() + 30
    logged = _read_offline_run(run.settings.sync_file)
    while len(logged) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        logged = _read_offline_run(run.settings.sync_file)
    assert [step["_step"] for step in logged] == [0, 1]
    for row, step in zip(rows, logged):
        for key, value in row.items():
            if key != "epoch":
                assert step[key] == pytest.approx(float(value)), key


def _read_offline_run(path):
    """The `history` records of an offline W&B run file (LevelDB log format), as dicts."""
    import json
    import struct

    from wandb.proto import wandb_internal_pb2

    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:4] == b":W&B"
    records, pending, offset, block = [], b"", 7, 32768
    while offset + 7 <= len(data):
        left = block - offset % block
        if left < 7:  # block trailer padding
            offset += left
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        payload = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            break
        pending += payload
        if kind in (1, 4):  # FULL or LAST
            records.append(pending)
            pending = b""
    steps = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            steps.append(
                {
                    (item.key or "/".join(item.nested_key)): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return steps
