import os

import keras
import numpy as np
import pytest

from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.inputs.streaming import ShardDataset, stream_statistics
from keras_trainer.core.training.fit import fit
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import ConfigError, DataError
from tests.conftest import BACKEND, BatchCounter, EpochCounter


def _table(rng, n=96):
    x = rng.normal(size=(n, 4)).astype("float32") * 2 + 1
    label = (x[:, 0] > 1).astype("float32")
    return np.column_stack([x, label])


def _npy_shards(tmp_path, rng, shards=3, n=32):
    tables = []
    for i in range(shards):
        table = _table(rng, n)
        np.save(tmp_path / f"part-{i}.npy", table)
        tables.append(table)
    return np.concatenate(tables)


def _config(**overrides):
    data = {
        "epochs": 2,
        "verbose": 0,
        "early_stopping_patience": 0,
        "batch_size": 16,
        "loss": "binary_crossentropy",
        "metrics": [],
        "validation_split": 0.0,
    }
    data.update(overrides)
    return TrainingConfig.from_dict(data)


def _model():
    set_seed(3)
    return build_model(
        ModelConfig(hidden_layers=[8], output_dim=1, output_activation="sigmoid"), (4,)
    )


def test_every_row_is_seen_once_per_epoch_in_a_seeded_order(tmp_path, rng):
    table = _npy_shards(tmp_path, rng)
    data = ShardDataset(tmp_path, batch_size=10, shuffle_buffer=20, seed=5)
    rows = np.concatenate([np.column_stack(data[i]) for i in range(len(data))])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, table))
    assert not np.array_equal(rows, table)  # shuffled
    again = ShardDataset(tmp_path, batch_size=10, shuffle_buffer=20, seed=5)
    np.testing.assert_array_equal(np.column_stack(again[3]), np.column_stack(data[3]))
    data.on_epoch_end()
    assert not np.array_equal(np.column_stack(data[0]), np.column_stack(again[0]))


def test_position_epoch_and_step_fixes_the_batch(tmp_path, rng):
    _npy_shards(tmp_path, rng)
    data = ShardDataset(tmp_path, batch_size=8, seed=1)
    data.on_epoch_end()
    data.on_epoch_end()
    resumed = ShardDataset(tmp_path, batch_size=8, seed=1, initial_epoch=2)
    assert data.batch_rows(5) == resumed.batch_rows(5)
    np.testing.assert_array_equal(data[5][0], resumed[5][0])


def test_csv_and_parquet_shards_give_the_rows_of_their_columns(tmp_path, rng):
    table = _table(rng, 20)
    header = "a,b,c,d,label"
    np.savetxt(tmp_path / "one.csv", table[:12], delimiter=",", header=header, comments="")
    np.savetxt(tmp_path / "two.csv", table[12:], delimiter=",", header=header, comments="")
    data = ShardDataset(tmp_path, target_columns=["label"], batch_size=20, shuffle=False)
    x, y = data[0]
    np.testing.assert_allclose(x, table[:, :4], rtol=1e-6)
    np.testing.assert_allclose(y, table[:, 4])
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "parquet"
    folder.mkdir()
    pq.write_table(
        pyarrow.table({n: table[:, i] for i, n in enumerate(header.split(","))}),
        folder / "p.parquet",
    )
    x, y = ShardDataset(
        str(folder / "*.parquet"),
        target_columns=["label"],
        batch_size=20,
        shuffle=False,
    )[0]
    np.testing.assert_allclose(x, table[:, :4])


def test_stream_statistics_in_one_pass_match_numpy(tmp_path, rng):
    table = _npy_shards(tmp_path, rng)
    mean, variance = stream_statistics(ShardDataset(tmp_path, batch_size=7))
    np.testing.assert_allclose(mean, table[:, :4].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, table[:, :4].var(axis=0), rtol=1e-5)
    batches = [(table[i : i + 10, :4], None) for i in range(0, len(table), 10)]
    np.testing.assert_allclose(stream_statistics(batches)[1], table[:, :4].var(axis=0), rtol=1e-5)


def test_bad_shards_are_named(tmp_path, rng):
    with pytest.raises(DataError, match="no shards"):
        ShardDataset(tmp_path)
    np.save(tmp_path / "a.npy", np.zeros((3, 2, 2)))
    with pytest.raises(DataError, match="a.npy.*2-D"):
        ShardDataset(tmp_path)
    os.remove(tmp_path / "a.npy")
    np.save(tmp_path / "a.npy", np.zeros((3, 5)))
    with pytest.raises(DataError, match="column index 7"):
        ShardDataset(tmp_path, target_columns=[7])


def test_fit_trains_on_a_shard_folder_with_workers(tmp_path, rng):
    _npy_shards(tmp_path, rng)
    data = ShardDataset(tmp_path, num_workers=2, prefetch=2)
    history = fit(
        _model(),
        data,
        config=_config(validation_split=0.25, epochs=3, learning_rate=0.05),
    )
    assert len(history.history["val_loss"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_resumed_stream_training_equals_an_uninterrupted_run(tmp_path, rng):
    (tmp_path / "data").mkdir()
    _npy_shards(tmp_path / "data", rng)
    source = str(tmp_path / "data")
    straight = _model()
    fit(straight, source, config=_config(epochs=3))
    checkpoints = str(tmp_path / "ckpt")
    first = _model()
    fit(first, source, config=_config(epochs=2, checkpoint={"directory": checkpoints}))
    resumed, trained = _model(), EpochCounter()
    history = fit(
        resumed,
        source,
        config=_config(epochs=3, resume=True, checkpoint={"directory": checkpoints}),
        callbacks=[trained],
    )
    # From epoch 1's checkpoint: only epoch 2 trained.
    assert (history.resumed_from_epoch, history.resumed_from_step, trained.count) == (2, 0, 1)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_generator_needs_steps_per_epoch(rng):
    table = _table(rng, 32)

    def batches():
        while True:
            yield table[:16, :4], table[:16, 4]

    with pytest.raises(ConfigError, match="steps_per_epoch"):
        fit(_model(), batches(), config=_config())
    history = fit(_model(), batches(), config=_config(steps_per_epoch=2))
    assert len(history.epochs) == 2
    with pytest.raises(ConfigError, match="y=None"):
        fit(_model(), batches(), table[:, 4], config=_config(steps_per_epoch=2))


def test_backend_native_streams(rng):
    table = _table(rng, 32)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        stream = tf.data.Dataset.from_tensor_slices((table[:, :4], table[:, 4])).batch(8)
    elif BACKEND == "torch":
        import torch

        dataset = torch.utils.data.TensorDataset(
            torch.from_numpy(table[:, :4]), torch.from_numpy(table[:, 4])
        )
        stream = torch.utils.data.DataLoader(dataset, batch_size=8)
    else:

        class Batches(keras.utils.PyDataset):
            def __len__(self):
                return 4

            def __getitem__(self, i):
                return table[i * 8 : (i + 1) * 8, :4], table[i * 8 : (i + 1) * 8, 4]

        stream = Batches()
    history = fit(_model(), stream, config=_config(batch_size=8))
    assert len(history.history["loss"]) == 2


def test_a_stream_from_the_config_sections(tmp_path, rng):
    from keras_trainer.config import DataConfig

    _npy_shards(tmp_path, rng)
    data = DataConfig.from_dict(
        {
            "shards": str(tmp_path / "*.npy"),
            "num_workers": 3,
            "prefetch": 2,
            "shuffle_buffer": 50,
            "target_columns": ["-1"],
        }
    )
    stream = ShardDataset.from_config(data, _config())
    assert (
        stream.workers,
        stream.max_queue_size,
        stream.shuffle_buffer,
        stream.batch_size,
    ) == (3, 2, 50, 16)
    assert stream.target_index == [4] and len(stream.paths) == 3


class _Killed(Exception):
    pass


class _KillAtStep(keras.callbacks.Callback):
    """Stops the process's training abruptly after batch `step` of `epoch`, as a kill would."""

    def __init__(self, epoch, step):
        super().__init__()
        self.kill_epoch, self.kill_step, self.epoch = epoch, step, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.kill_epoch and batch + 1 == self.kill_step:
            raise _Killed()


def test_a_run_stopped_within_an_epoch_resumes_at_its_last_step_checkpoint(tmp_path, rng):
    from keras_trainer.core.saving.checkpoints import CheckpointManager

    (tmp_path / "data").mkdir()
    _npy_shards(tmp_path / "data", rng)  # 96 rows: 6 batches of 16 per epoch
    source = str(tmp_path / "data")
    settings = dict(epochs=3, learning_rate=0.05)
    straight = _model()
    straight_history = fit(straight, source, config=_config(**settings))

    checkpoints = str(tmp_path / "ckpt")
    every = {"directory": checkpoints, "every_steps": 2}
    with pytest.raises(_Killed):
        fit(
            _model(),
            source,
            config=_config(checkpoint=every, **settings),
            callbacks=[_KillAtStep(epoch=1, step=5)],
        )
    manager = CheckpointManager(checkpoints)
    # Epoch 0's own checkpoint, and the newest one within epoch 1 (after batch 4).
    assert manager.latest().endswith("epoch-000001-step-000000004")
    assert [epoch for epoch, _ in manager.epoch_dirs()] == [0]

    resumed, batches = _model(), BatchCounter()
    history = fit(
        resumed,
        source,
        config=_config(checkpoint=every, resume=True, **settings),
        callbacks=[batches],
    )
    assert batches.count == 2 + 6  # the rest of epoch 1 (batches 5 and 6), then epoch 2
    assert (history.resumed_from_epoch, history.resumed_from_step) == (1, 4)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert history.epochs == straight_history.epochs
    # Step checkpoints are gone once their epoch's own checkpoint exists.
    assert manager.latest().endswith("epoch-000002")


def test_step_checkpoints_need_a_stream_that_can_start_at_a_batch(tmp_path, rng):
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    config = _config(checkpoint={"directory": str(tmp_path), "every_steps": 2})
    with pytest.raises(ConfigError, match="checkpoint.every_steps: checkpoints within an epoch"):
        fit(_model(), x, y, config=config)


def test_from_step_leaves_out_the_first_batches_of_the_epoch(tmp_path, rng):
    _npy_shards(tmp_path, rng)
    data = ShardDataset(tmp_path, batch_size=16, seed=2, initial_epoch=1)
    later = data.from_step(4)
    assert len(later) == len(data) - 4
    np.testing.assert_array_equal(later[0][0], data[4][0])
