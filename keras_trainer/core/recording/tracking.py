"""Optional MLflow tracking of a finished run (`--mlflow`, `[mlflow]` extra).

`track_run(run, ...)` logs one MLflow run: the resolved config as parameters
(flattened, `training.learning_rate`), every epoch of the history as metric
steps, the final metrics, and the whole run folder (config, history, report,
plots, model) as artifacts. By default the store is a local folder beside the
runs, `runs/mlruns`; any MLflow tracking URI (a server, a database) may be given
instead.

MLflow 3 reads and writes its file store only on request
(`MLFLOW_ALLOW_FILE_STORE=true`, set here for `file:` URIs): a database store
needs SQLAlchemy, a server needs a server; a folder needs nothing. Browsing the
folder needs the whole `mlflow` package (its web server: Flask, SQLAlchemy, the
pages), which the `[mlflow-ui]` extra installs; `ui_command` is the line that
opens it, printed after each tracked run:

    MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri runs/mlruns

Example:

>>> run = RunFolder.create("breast_cancer")
>>> ...  # train, writing into run.path
>>> track_run(run, experiment="breast_cancer", params=config.to_dict(), metrics={"test_accuracy": 0.97})
"""

from __future__ import annotations

import json
import os
from typing import Any

from keras_trainer.core.recording.runs import RunFolder, load_history
from keras_trainer.errors import BackendNotSupportedError

_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"training": {"epochs": 3}}` -> `{"training.epochs": "3"}` (lists as JSON)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[name] = text[:_MAX_PARAM_LENGTH]
    return flat


def default_tracking_uri(run: RunFolder) -> str:
    """`file:` URI of `mlruns/` in the folder that holds every run (`runs/mlruns`)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(run.path)))
    return "file:" + os.path.join(root, "mlruns")


def is_file_store(uri: str) -> bool:
    """Whether a tracking URI is a local folder (`file:...` or a plain path)."""
    return uri.startswith("file:") or "://" not in uri


def ui_command(tracking_uri: str) -> str:
    """The shell line that opens a tracking store in MLflow's web pages (`[mlflow-ui]` extra)."""
    if not is_file_store(tracking_uri):
        return f"mlflow ui --backend-store-uri {tracking_uri}"
    path = tracking_uri[len("file:") :] if tracking_uri.startswith("file:") else tracking_uri
    return f"MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {os.path.relpath(path)}"


def track_run(
    run: RunFolder,
    experiment: str,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Logs a finished run folder to MLflow; returns the MLflow run id.

    Args:
        run: The run folder (its history, if any, is logged epoch by epoch).
        experiment: MLflow experiment name (created if missing).
        params: Parameters, usually the resolved config (nested dicts are flattened).
        metrics: Final metrics (test-set values, the tuning result).
        tracking_uri: MLflow tracking URI; default `default_tracking_uri(run)`.

    Raises:
        BackendNotSupportedError: MLflow is not installed.
    """
    uri = tracking_uri or default_tracking_uri(run)
    if is_file_store(uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        import mlflow
    except ImportError:
        raise BackendNotSupportedError(
            "--mlflow needs MLflow: pip install 'keras-trainer[mlflow]' (or leave --mlflow off)"
        ) from None
    client = mlflow.tracking.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    name = f"{run.name}/version_{run.version}" if run.version is not None else run.name
    mlflow_run = client.create_run(
        experiment_id, run_name=name, tags={"keras_trainer.run_folder": run.path}
    )
    run_id = mlflow_run.info.run_id
    from mlflow.entities import Metric, Param

    status = "FINISHED"
    try:
        flat = flatten(params or {})
        names = list(flat)
        for start in range(0, len(names), 100):
            client.log_batch(run_id, params=[Param(k, flat[k]) for k in names[start : start + 100]])
        entries = []
        if run.exists(RunFolder.HISTORY_JSON) or run.exists(RunFolder.HISTORY_CSV):
            history = load_history(run.path)
            for metric, values in history["history"].items():
                entries += [Metric(metric, float(v), 0, step) for step, v in enumerate(values)]
            entries += [
                Metric("learning_rate", float(v), 0, s)
                for s, v in enumerate(history["learning_rates"])
            ]
        entries += [Metric(k, float(v), 0, 0) for k, v in (metrics or {}).items()]
        for start in range(0, len(entries), 500):
            client.log_batch(run_id, metrics=entries[start : start + 500])
        client.log_artifacts(run_id, run.path)
    except Exception:
        status = "FAILED"
        raise
    finally:
        client.set_terminated(run_id, status)
    return run_id
