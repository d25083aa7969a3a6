"""`tuning.population_size`: trials handed out together and trained as populations."""

import numpy as np
import pytest

from keras_trainer.errors import ConfigError
from keras_trainer.tuning import AutoTrainer, AutoTrainerConfig, HyperparameterSpace
from tests.tuning.test_auto_trainer import NET, cancer  # noqa: F401  (the shared data fixture)

SPACE = HyperparameterSpace(
    learning_rates=[1e-3, 3e-3, 1e-2],
    batch_sizes=[32, 64],
    optimizers=["adam"],
    dropout_rates=[0.0],
    weight_decay=[0.0, 1e-4],
)


def _search(directory, train, val, population_size, **overrides):
    settings = {
        "search_method": "random",
        "max_trials": 4,
        "metric": "loss",
        "max_epochs": 4,
        "early_stopping_patience": 2,
        "seed": 5,
        "hyperparameter_space": SPACE,
        **overrides,
    }
    config = AutoTrainerConfig(
        directory=str(directory), population_size=population_size, **settings
    )
    trainer = AutoTrainer(config)
    result = trainer.optimize(NET, train, val, symbol="population")
    return trainer, result


@pytest.fixture
def population_sizes(monkeypatch):
    """The sizes of the populations the search trains, in order."""
    from keras_trainer.tuning import population

    sizes = []
    fit_populations = population.fit_populations

    def spy(populations, **kwargs):
        sizes.extend(len(p["configs"]) for p in populations)
        return fit_populations(populations, **kwargs)

    monkeypatch.setattr(population, "fit_populations", spy)
    return sizes


def test_a_population_search_scores_every_trial_as_the_one_by_one_search(
    cancer,  # noqa: F811
    tmp_path,
    population_sizes,
):
    train, val, _ = cancer
    one_by_one, alone = _search(tmp_path / "one", train, val, population_size=1)
    together, result = _search(tmp_path / "population", train, val, population_size=4)
    # The 4 trials came at once; those of one batch size trained together.
    assert sum(population_sizes) == 4 and max(population_sizes) > 1
    rows = {r.trial_id: r for r in one_by_one.trials_table()}
    table = together.trials_table()
    assert [r.status for r in table] == ["COMPLETED"] * 4
    # The oracle proposes the same trials (same seed); each scores as when trained alone.
    for record in table:
        twin = rows[record.trial_id]
        assert record.hyperparameters == twin.hyperparameters
        np.testing.assert_allclose(record.value, twin.value, rtol=1e-4, atol=1e-5)
        assert record.epochs == twin.epochs
    assert result.trial_id == alone.trial_id
    np.testing.assert_allclose(result.val_metric, alone.val_metric, rtol=1e-4, atol=1e-5)
    # The trials' checkpoints are KerasTuner's: an ensemble of the best two loads them.
    assert together.ensemble(top_k=2).count_params() > 0


@pytest.mark.one_backend
@pytest.mark.parametrize(
    "setting, key",
    [
        ({"search_method": "hyperband"}, "search_method"),
        ({"cv_folds": 3}, "cv_folds"),
        ({"min_epochs": 2}, "min_epochs"),
        ({"metric": "sharpe"}, "metric"),
    ],
)
def test_what_a_population_cannot_do_is_named(setting, key):
    with pytest.raises(ConfigError, match=f"tuning.population_size: 4 does not go with {key}="):
        AutoTrainerConfig(population_size=4, **setting)


@pytest.mark.one_backend
def test_a_population_is_not_split_over_workers(cancer, tmp_path):  # noqa: F811
    train, val, _ = cancer
    trainer = AutoTrainer(AutoTrainerConfig(population_size=2, directory=str(tmp_path)))
    with pytest.raises(ConfigError, match="population_size: 2 does not go with workers=2"):
        trainer.optimize(NET, train, val, workers=2)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_grid_search_hands_out_whole_populations(cancer, tmp_path, population_sizes):  # noqa: F811
    train, val, _ = cancer
    grid = HyperparameterSpace(
        learning_rates=[1e-3, 3e-2],
        batch_sizes=[32],
        optimizers=["adam", "adamw"],
        dropout_rates=[0.0],
        weight_decay=[0.0],
    )
    trainer, _ = _search(
        tmp_path, train, val, population_size=4, search_method="grid", hyperparameter_space=grid
    )
    # The whole 4-point grid came as one population (KerasTuner alone gives 1, then 1, ...):
    # Adam and AdamW trials take the same step.
    assert population_sizes == [4]
    table = trainer.trials_table()
    assert sorted(
        (r.hyperparameters["optimizer"], r.hyperparameters["learning_rate"]) for r in table
    ) == [("adam", 1e-3), ("adam", 3e-2), ("adamw", 1e-3), ("adamw", 3e-2)]
