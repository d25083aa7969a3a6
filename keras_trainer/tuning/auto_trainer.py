"""`AutoTrainer`: hyperparameter search over tabular and time-series networks, run by KerasTuner.

Each search lives in `<directory>/<symbol>/` (KerasTuner's project folder plus
`tuning.log`, `trials.json` and `best.json`); calling `optimize` again with the
same directory and symbol resumes it: finished trials are not run again.

A trial that raises is never hidden: KerasTuner marks it FAILED and keeps the
traceback in `trial.message`; `AutoTrainer` logs it (logger
`keras_trainer.tuning` and `tuning.log`), shows it in `trials_table()`, and
raises `TuningError` with the errors when no trial succeeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, Optional, Union

import keras
import keras_tuner
import numpy as np

from keras_trainer.config.tuning import HyperparameterSpace, TuningConfig
from keras_trainer.core.evaluating.tables import ResultTable
from keras_trainer.core.inputs.data import check_pair
from keras_trainer.core.saving.atomic import write_json_atomic
from keras_trainer.errors import ConfigError, DataError, TuningError
from keras_trainer.tabular.config import TabularModelConfig
from keras_trainer.tabular.normalization import FeatureScaler, save_tabular_model, serving_model
from keras_trainer.tuning.distributed import DistributedSearch, end_with_chief, worker_role
from keras_trainer.tuning.hypermodel import ModelFactoryLike, TunableModel
from keras_trainer.tuning.metrics import Objective, resolve_objective

logger = logging.getLogger("keras_trainer.tuning")

_TUNERS = {
    "grid": keras_tuner.GridSearch,
    "random": keras_tuner.RandomSearch,
    "bayesian": keras_tuner.BayesianOptimization,
    "hyperband": keras_tuner.Hyperband,
}


def _slug(symbol: Optional[str]) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", symbol) if symbol else "default"


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def _four_digits(value: Any) -> Any:
    """A float as about 4 significant digits for a log line (0.2342, not 0.23415678739547729)."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _last_line(message: Optional[str]) -> str:
    """The `SomeError: message` line of a traceback (backends may append notes after it)."""
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line
    return lines[-1] if lines else ""


@dataclasses.dataclass
class TrialRecord:
    """One trial of a search.

    Attributes:
        trial_id: KerasTuner's id.
        status: "COMPLETED", "FAILED", "INVALID", "STOPPED" or "RUNNING".
        hyperparameters: The trial's values (Hyperband's `tuner/*` bookkeeping removed).
        value: Best objective value of the trial (None if it failed).
        epochs: Epochs trained; steps_per_epoch: training batches per epoch.
        seconds: Wall time of the trial.
        error: The exception line of a failed trial; traceback: the whole text.
    """

    trial_id: str
    status: str
    hyperparameters: dict
    value: Optional[float]
    epochs: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    seconds: Optional[float] = None
    error: str = ""
    traceback: str = dataclasses.field(default="", repr=False)

    def row(self) -> dict:
        row = {
            "trial_id": self.trial_id,
            "status": self.status,
            **self.hyperparameters,
            "value": self.value,
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "error": self.error,
        }
        return row


class TrialTable(ResultTable):
    """All trials of a search, in the order they ran."""

    def __init__(self, records: list[TrialRecord], objective: Objective):
        super().__init__(records)
        self.objective = objective

    @property
    def completed(self) -> list[TrialRecord]:
        return [r for r in self.records if r.status == "COMPLETED" and r.value is not None]

    @property
    def failed(self) -> list[TrialRecord]:
        return [r for r in self.records if r.status in ("FAILED", "INVALID")]


@dataclasses.dataclass
class TuningResult:
    """The best trial, retrained.

    Attributes:
        symbol: The symbol searched (None for the default folder).
        hyperparameters: Best values of learning_rate, batch_size, optimizer,
            dropout_rate, weight_decay (and any the factory declared).
        metric: The objective's log name (e.g. "val_sharpe").
        val_metric: The returned model's best validation value of it.
        search_val_metric: The best trial's value during the search.
        trial_id: Id of the best trial.
        model: Model that takes RAW features (normalization inside when `normalize`).
        network: The trained network (takes standardized features).
        scaler: The `FeatureScaler` of the training data, or None.
        history: `TrainingHistory` of the retraining (None if not retrained).
        directory: The search folder.
        trials: The `TrialTable` of the search.
    """

    symbol: Optional[str]
    hyperparameters: dict
    metric: str
    val_metric: float
    search_val_metric: float
    trial_id: str
    model: keras.Model = dataclasses.field(repr=False)
    network: keras.Model = dataclasses.field(repr=False)
    scaler: Optional[FeatureScaler] = dataclasses.field(repr=False, default=None)
    history: Any = dataclasses.field(repr=False, default=None)
    directory: str = ""
    trials: Optional[TrialTable] = dataclasses.field(repr=False, default=None)

    learning_rate = property(lambda self: self.hyperparameters["learning_rate"])
    batch_size = property(lambda self: self.hyperparameters["batch_size"])
    optimizer = property(lambda self: self.hyperparameters["optimizer"])
    dropout_rate = property(lambda self: self.hyperparameters["dropout_rate"])
    weight_decay = property(lambda self: self.hyperparameters["weight_decay"])

    def metadata(self) -> dict:
        return {
            "tuning": {
                "symbol": self.symbol,
                "hyperparameters": self.hyperparameters,
                "metric": self.metric,
                "val_metric": self.val_metric,
                "trial_id": self.trial_id,
            }
        }

    def save(self, path: Union[str, os.PathLike], metadata: Optional[dict] = None) -> str:
        """Saves the model (taking raw features) with normalization stats and the best
        hyperparameters in its metadata, through `keras_trainer.core.saving.persistence`."""
        return save_tabular_model(
            self.network, path, self.scaler, {**self.metadata(), **(metadata or {})}
        )


class AutoTrainer:
    """Searches learning rate, batch size, optimizer, dropout and weight decay with KerasTuner.

    Args:
        config: `TuningConfig`/`AutoTrainerConfig`, a JSON-style dict of one, or None
            for the defaults.
        hyperparameter_space: Replaces `config.hyperparameter_space`.

    Example:

    >>> trainer = AutoTrainer(AutoTrainerConfig(search_method="bayesian", max_trials=10, metric="accuracy"))
    >>> result = trainer.optimize(make_model, (x_train, y_train), (x_val, y_val), symbol="BTC-USD")
    >>> result.learning_rate, result.batch_size, result.val_metric
    >>> trainer.trials_table().to_pandas()
    """

    def __init__(
        self,
        config: Union[TuningConfig, dict, None] = None,
        hyperparameter_space: Optional[HyperparameterSpace] = None,
    ):
        if config is None:
            config = TuningConfig()
        elif isinstance(config, dict):
            config = TuningConfig.from_dict(config)
        elif not isinstance(config, TuningConfig):
            raise ConfigError(
                f"config must be a TuningConfig or a dict, got {type(config).__name__}"
            )
        if hyperparameter_space is not None:
            config.hyperparameter_space = hyperparameter_space
        self.config = config
        self.tuner: Optional[keras_tuner.Tuner] = None
        self.result: Optional[TuningResult] = None
        self._table: Optional[TrialTable] = None
        self._project_dir: Optional[str] = None
        self.distributed_events: list[str] = []
        # Finished trials' times not yet in the trials file (see `_write_info`).
        self._info_pending: dict = {}
        self._info_deferred = False

    # ----------------------------------------------------------------- search
    def _make_tuner(self, hypermodel: TunableModel, objective: Objective, project: str):
        config = self.config
        base = _TUNERS[config.search_method]
        recorder = self

        class RecordingTuner(base):
            """Times every trial and reports failures the moment they happen."""

            def on_trial_begin(self, trial):
                self._started = time.perf_counter()
                hypermodel.last_fit = None
                super().on_trial_begin(trial)

            def on_trial_end(self, trial):
                try:
                    super().on_trial_end(trial)
                finally:
                    recorder._record_trial(
                        self.oracle.get_trial(trial.trial_id),
                        time.perf_counter() - self._started,
                        hypermodel.last_fit,
                    )

            def save(self):
                super().save()
                recorder._write_info()

            @contextlib.contextmanager
            def deferred_records(self):
                """Within it, finished trials' times wait in memory for `save` (or its end)."""
                recorder._info_deferred = True
                try:
                    yield
                finally:
                    recorder._info_deferred = False
                    recorder._write_info()

        common = dict(
            hypermodel=hypermodel,
            objective=keras_tuner.Objective(objective.name, direction=objective.direction),
            seed=config.seed,
            directory=config.directory,
            project_name=project,
            overwrite=False,
            max_consecutive_failed_trials=config.max_consecutive_failures,
        )
        if config.search_method == "hyperband":
            tuner = RecordingTuner(
                max_epochs=config.max_epochs,
                factor=config.hyperband_factor,
                hyperband_iterations=1,
                **common,
            )
            # Hyperband has no trial budget of its own; the base oracle honours this cap.
            tuner.oracle.max_trials = config.max_trials
            return tuner
        return RecordingTuner(max_trials=config.max_trials, **common)

    def _info_path(self) -> str:
        # Each worker of a distributed search times its own trials in its own file.
        role = worker_role()
        name = "trials.json" if role is None else f"trials-{role}.json"
        return os.path.join(self._project_dir, name)

    def _write_info(self) -> None:
        """Adds the trials recorded since the last write to this process's trials file."""
        if not self._info_pending:
            return
        info = self._load_info()
        info.update(self._info_pending)
        write_json_atomic(self._info_path(), info)
        self._info_pending = {}

    def _load_info(self) -> dict:
        info = {}
        for name in sorted(os.listdir(self._project_dir)):
            if re.fullmatch(r"trials(-[\w.-]+)?\.json", name):
                try:
                    with open(os.path.join(self._project_dir, name), encoding="utf-8") as handle:
                        info.update(json.load(handle))
                except (OSError, json.JSONDecodeError):
                    continue
        return info

    def _record_trial(self, trial, seconds: float, fit_info: Optional[dict]) -> None:
        if fit_info:
            # A trial of a population reports the population's time, not the wait for
            # the other populations of its wave.
            seconds = fit_info.get("seconds", seconds)
        entry = {"seconds": seconds, "epochs": None, "steps_per_epoch": None}
        if fit_info:
            entry.update(epochs=fit_info["epochs"], steps_per_epoch=fit_info["steps_per_epoch"])
        self._info_pending[trial.trial_id] = entry
        if not self._info_deferred:
            self._write_info()
        status = str(trial.status)
        if status in ("FAILED", "INVALID"):
            logger.error(
                "trial %s %s: %s\n%s",
                trial.trial_id,
                status,
                _last_line(trial.message),
                trial.message or "",
            )
        else:
            values = {
                k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
            }
            logger.info(
                "trial %s %s in %.2fs: %s=%s %s",
                trial.trial_id,
                status,
                seconds,
                self._objective.name,
                _four_digits(trial.score),
                {k: _four_digits(v) for k, v in values.items()},
            )

    def _collect(self) -> TrialTable:
        info = self._load_info()
        records = []
        for trial_id in self.tuner.oracle.end_order or list(self.tuner.oracle.trials):
            trial = self.tuner.oracle.trials[trial_id]
            values = {
                k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
            }
            extra = info.get(trial_id, {})
            status = str(trial.status)
            records.append(
                TrialRecord(
                    trial_id=trial_id,
                    status=status,
                    hyperparameters=values,
                    value=None if trial.score is None else float(trial.score),
                    epochs=extra.get("epochs"),
                    steps_per_epoch=extra.get("steps_per_epoch"),
                    seconds=extra.get("seconds"),
                    error=_last_line(trial.message) if status in ("FAILED", "INVALID") else "",
                    traceback=trial.message or "" if status in ("FAILED", "INVALID") else "",
                )
            )
        return TrialTable(records, self._objective)

    def trials_table(self) -> TrialTable:
        """Every trial of the last `optimize` (including resumed ones): values, status, errors, times."""
        if self._table is None:
            raise TuningError("no search yet: call optimize() first")
        return self._table

    def optimize(
        self,
        model_factory: ModelFactoryLike,
        train_data: tuple,
        val_data: tuple,
        symbol: Optional[str] = None,
        val_returns: Optional[Any] = None,
        loss: Any = None,
        metrics: Optional[list] = None,
        workers: int = 0,
        worker_command: Optional[Sequence[str]] = None,
        oracle_host: str = "127.0.0.1",
        oracle_port: int = 0,
        val_times: Optional[Any] = None,
    ) -> Optional[TuningResult]:
        """Runs (or resumes) the search and returns the best result, retrained.

        With `workers=N` the search is distributed on KerasTuner's chief/worker
        protocol (`docs/distributed.md`): this process serves the oracle and starts
        N workers running `worker_command` (default: this program again,
        `[sys.executable, *sys.argv]`), one per GPU when there are GPUs. A process
        started as a KerasTuner worker (`KERASTUNER_ORACLE_IP` etc. set, tuner id
        not "chief") runs trials for its chief and returns `None`.

        Args:
            model_factory: `fn(dropout_rate=..., **kwargs) -> keras.Model` (a factory
                taking `hp` gets the trial's HyperParameters), or a
                `TabularModelConfig` (its `input_size`/`sequence_length` are taken
                from the data when None).
            train_data: `(X, y)`; X is `(n, features)` or `(n, steps, features)`.
            val_data: `(X_val, y_val)`, used for the objective (never for training).
            symbol: Names the results sub-folder (e.g. "BTC-USD").
            val_returns: Realized return of each validation sample, for sharpe and
                sortino; defaults to `y_val` for regression models.
            loss: Overrides `config.loss` and the inferred loss.
            metrics: Keras metrics to compile (the objective's is added).
            workers: Local worker processes of a distributed search (0: run here).
            worker_command: The command line of each worker (see above).
            oracle_host: Address the chief's oracle listens on (`0.0.0.0` lets
                workers on other machines join).
            oracle_port: Its port (0: a free one; give one for remote workers).
            val_times: Measured time of each validation sample under each
                strategy, `(n_val, classes)` in class order, for the runtime
                objectives `regret` and `geomean_regret` (the JIT strategy model).

        Returns:
            A `TuningResult`, or `None` in a worker process.

        Raises:
            ConfigError: bad settings; DataError: bad arrays; TuningError: every
            trial failed (the errors are in the message), or too many in a row.
        """
        config = self.config
        _check_settings(config, workers)
        objective = resolve_objective(config.metric, config.maximize_metric)
        self._objective = objective
        x, y, x_val, y_val, returns = _check_search_data(
            train_data, val_data, val_returns, objective
        )
        times = _check_times(val_times, x_val, objective)
        model_factory = _sized_to_data(model_factory, x)
        scaler = FeatureScaler().fit(x) if config.normalize else None
        if scaler is not None:
            x, x_val = scaler.transform(x, "train_data[0]"), scaler.transform(x_val, "val_data[0]")

        project = _slug(symbol)
        self._project_dir = os.path.join(config.directory, project)
        with _project_log(self._project_dir):
            hypermodel = TunableModel(
                model_factory, config, objective, loss, metrics, returns, val_times=times
            )
            self.tuner = self._first_tuner(hypermodel, objective, project)
            logger.info(
                "search %s in %s: method=%s max_trials=%d objective=%s (%s)",
                project,
                self._project_dir,
                config.search_method,
                config.max_trials,
                objective.name,
                objective.direction,
            )
            if worker_role() is not None:
                # A worker runs the trials its chief hands out; the chief keeps the results.
                self.tuner.search(x, y, validation_data=(x_val, y_val), verbose=config.verbose)
                logger.info("worker %s: the search has no trials left", worker_role())
                return None
            self._search(x, y, x_val, y_val, workers, worker_command, oracle_host, oracle_port)
            self.result = self._best(hypermodel, symbol, x, y, x_val, y_val, scaler)
            write_json_atomic(
                os.path.join(self._project_dir, "best.json"), self.result.metadata()["tuning"]
            )
            logger.info(
                "best trial %s: %s %s=%.6g",
                self.result.trial_id,
                self.result.hyperparameters,
                objective.name,
                self.result.val_metric,
            )
            return self.result

    def _first_tuner(self, hypermodel: Any, objective: Any, project: str) -> Any:
        """The KerasTuner tuner; it builds a first model here to collect the search space."""
        try:
            return self._make_tuner(hypermodel, objective, project)
        except Exception as error:
            if isinstance(error, (ConfigError, TuningError)):
                raise
            raise TuningError(
                f"building the first model to declare the search space failed: {type(error).__name__}: {error}"
            ) from error

    def _search(self, x, y, x_val, y_val, workers, worker_command, host, port) -> None:
        """Runs the trials, here or on workers; leaves the trial table in `_table`."""
        config = self.config
        try:
            if workers:
                self.tuner.oracle.verbose = config.verbose
                search = DistributedSearch(
                    self.tuner.oracle,
                    workers,
                    list(worker_command) if worker_command else [sys.executable, *sys.argv],
                    os.path.join(self._project_dir, "workers"),
                    host=host,
                    port=port,
                )
                self.distributed_events = search.run()
            elif (size := self._population_size(len(x_val))) > 1:
                from keras_trainer.tuning.population import population_search

                self.tuner.oracle.verbose = config.verbose
                population_search(self.tuner, self.tuner.hypermodel, x, y, x_val, y_val, size)
            else:
                self.tuner.search(x, y, validation_data=(x_val, y_val), verbose=config.verbose)
        except RuntimeError as error:
            self._table = self._collect()
            raise TuningError(
                f"search aborted after {config.max_consecutive_failures} consecutive failed trials; errors: "
                + "; ".join(f"trial {r.trial_id}: {r.error}" for r in self._table.failed)
            ) from error
        self._table = self._collect()
        if not self._table.completed:
            errors = (
                "; ".join(f"trial {r.trial_id}: {r.error}" for r in self._table.failed)
                or "no trial ran"
            )
            raise TuningError(f"no trial completed in {self._project_dir}: {errors}")

    def _population_size(self, validation_rows: int) -> int:
        """`tuning.population_size`, with "auto" measured for this tuner's first model."""
        size = self.config.population_size
        if size != "auto":
            return size
        from keras_trainer.tuning.population import resolve_population_size

        return resolve_population_size(
            self.tuner.hypermodel,
            self.tuner.oracle.hyperparameters,
            self.config.max_trials,
            validation_rows,
        )

    def ensemble(self, top_k: int = 3, name: str = "tuning_ensemble") -> keras.Model:
        """The best `top_k` completed trials of the last search as one model.

        Each trial's best-epoch checkpoint (kept by KerasTuner) is loaded and
        the networks are combined by `keras_trainer.core.evaluating.ensemble.build_ensemble`:
        the returned model averages their probabilities (or values). Like
        `TuningResult.model`, it takes RAW features (the search's
        normalization is inside when `normalize`). It saves, loads, exports
        to ONNX and serves like any model.

        Args:
            top_k: how many of the best trials to combine (at least 2; fewer
                are used when fewer completed).
            name: the model's name.

        Returns:
            A `keras.Model`.

        Raises:
            TuningError: no search has run, or fewer than two trials completed.

        Example:

        >>> trainer.optimize(make_model, (x, y), (x_val, y_val))  # doctest: +SKIP
        >>> keras_trainer.save_model(trainer.ensemble(top_k=3), "ensemble.keras")  # doctest: +SKIP
        """
        from keras_trainer.core.evaluating.ensemble import build_ensemble

        if self.tuner is None or self._table is None:
            raise TuningError("no search yet: call optimize() first")
        if top_k < 2:
            raise TuningError(f"an ensemble needs top_k >= 2, got {top_k}")
        trials = [t for t in self.tuner.oracle.get_best_trials(top_k) if t.score is not None]
        if len(trials) < 2:
            raise TuningError(
                f"an ensemble needs at least two completed trials; the search has {len(trials)}"
            )
        networks = [self.tuner.load_model(trial) for trial in trials]
        combined = build_ensemble(networks, name=f"{name}_network")
        scaler = self.result.scaler if self.result is not None else None
        return serving_model(combined, scaler, name=name) if scaler is not None else combined

    def _best(self, hypermodel, symbol, x, y, x_val, y_val, scaler) -> TuningResult:
        best_trial = self.tuner.oracle.get_best_trials(1)[0]
        hp = best_trial.hyperparameters
        values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
        history = None
        if self.config.retrain_best:
            # From scratch for config.max_epochs (Hyperband's `tuner/epochs` budget does not apply).
            network = hypermodel.build(hp)
            hypermodel.fit(hp, network, x, y, validation_data=(x_val, y_val))
            history = hypermodel.last_fit["history"]
            val_metric = self._objective.better(history.history[self._objective.name])
        else:
            network = self.tuner.load_model(best_trial)
            val_metric = float(best_trial.score)
        model = serving_model(network, scaler) if scaler is not None else network
        return TuningResult(
            symbol=symbol,
            hyperparameters=values,
            metric=self._objective.name,
            val_metric=float(val_metric),
            search_val_metric=float(best_trial.score),
            trial_id=best_trial.trial_id,
            model=model,
            network=network,
            scaler=scaler,
            history=history,
            directory=self._project_dir,
            trials=self._table,
        )


def _check_settings(config: TuningConfig, workers: int) -> None:
    """Validates the settings of a search with `workers`; a worker process ends with its chief."""
    config.validate("tuning")
    if workers and config.population_size != 1:
        raise ConfigError(
            f"tuning.population_size: {config.population_size} does not go with workers="
            f"{workers}; a population trains its trials in one process (set one of them to 1/0)"
        )
    if worker_role() is not None:
        end_with_chief()


def _sized_to_data(model_factory: Any, x: Any) -> Any:
    """A `TabularModelConfig` with `input_size` (and `sequence_length`) taken from `x` when None."""
    if isinstance(model_factory, TabularModelConfig):
        if model_factory.input_size is None:
            model_factory = model_factory.replace(input_size=int(x.shape[-1]))
        if x.ndim == 3 and model_factory.sequence_length is None:
            model_factory = model_factory.replace(sequence_length=int(x.shape[1]))
    return model_factory


def _check_search_data(train_data, val_data, val_returns, objective: Objective):
    """`(x, y, x_val, y_val, returns)` checked; `returns` only for trading metrics."""
    x, y = check_pair(train_data, "train_data")
    x_val, y_val = check_pair(val_data, "val_data")
    if x.shape[1:] != x_val.shape[1:]:
        raise DataError(
            f"train_data X has samples of shape {x.shape[1:]} but val_data X has {x_val.shape[1:]}"
        )
    if objective.kind != "trading":
        return x, y, x_val, y_val, None
    returns = y_val if val_returns is None else np.asarray(val_returns, dtype="float64").reshape(-1)
    if len(returns) != len(x_val):
        raise DataError(
            f"val_returns has {len(returns)} entries but val_data has {len(x_val)} samples"
        )
    if val_returns is None and np.issubdtype(np.asarray(y_val).dtype, np.integer):
        raise TuningError(
            f"metric {objective.metric!r} needs the realized return of each validation sample; y_val holds "
            "class labels, so pass val_returns=..."
        )
    return x, y, x_val, y_val, returns


def _check_times(val_times, x_val, objective: Objective):
    """The validation times as `(n, k)` float64, checked; `None` unless the objective is a runtime one."""
    if objective.kind != "runtime":
        return None
    if val_times is None:
        raise TuningError(
            f"metric {objective.metric!r} needs the measured time of each validation sample "
            "under each strategy: pass val_times=... (n_val, classes), or tune another metric"
        )
    times = np.asarray(val_times, dtype="float64")
    if times.ndim != 2 or len(times) != len(x_val) or not np.all(times > 0):
        raise DataError(
            f"val_times must be positive with shape ({len(x_val)}, classes), got shape {times.shape}"
        )
    return times


@contextlib.contextmanager
def _project_log(project_dir: str):
    """Copies the search's log lines to `tuning.log` in its project folder."""
    os.makedirs(project_dir, exist_ok=True)
    handler = logging.FileHandler(os.path.join(project_dir, "tuning.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
