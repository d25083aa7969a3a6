"""Run folders: every training or tuning run in its own `runs/<name>/version_N/`.

A new run never overwrites an earlier one: `RunFolder.create("jit")` makes
`runs/jit/version_0/`, then `version_1/`, ... (the folder is claimed with an
atomic `mkdir`, so two runs started at once get different versions). A run
folder holds:

| file | written by |
| --- | --- |
| `config.json` | the config as resolved (defaults filled in, command-line overrides applied) |
| `history.csv`, `history.json` | `fit`, one row per epoch (the folder is `training.logging.directory`) |
| `tensorboard/` | `fit`, with `--tensorboard` (`training.logging.tensorboard`) |
| `evaluation.json`, `evaluation.txt` | the test-set `EvaluationReport` |
| `training_curves.png`, `confusion_matrix.png` | `core.recording.plots.plot_run` (matplotlib) |
| `model.keras` | the trained model with its metadata |
| `summary.json` | what the run did: command, data, metrics, files |

`load_history` reads `history.json` (a `TrainingHistory` or a Keras
`History.history` dict) or `history.csv`, so `plot_training_curves` can draw
any run again (`keras-trainer plot RUN`).

Example:

>>> run = RunFolder.create("breast_cancer")          # runs/breast_cancer/version_0
>>> run.save_config(config.to_dict())
>>> config.training.logging.directory = run.path     # fit writes the history here
>>> run.resolve("runs/breast_cancer").path            # the latest version
"""

from __future__ import annotations

import csv
import json
import os
import re
from typing import Any

from keras_trainer.core.saving.atomic import write_json_atomic, write_text_atomic
from keras_trainer.errors import DataError

DEFAULT_ROOT = "runs"
_VERSION = re.compile(r"^version_(\d+)$")
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _versions(folder: str) -> list[int]:
    if not os.path.isdir(folder):
        return []
    return sorted(int(m.group(1)) for m in map(_VERSION.match, os.listdir(folder)) if m)


class RunFolder:
    """One run's folder, `<root>/<name>/version_<version>/`.

    Args:
        path: The version folder (existing).

    Attributes:
        path, name, version: The folder, the run's name, its version number.
    """

    CONFIG = "config.json"
    HISTORY_JSON = "history.json"
    HISTORY_CSV = "history.csv"
    REPORT_JSON = "evaluation.json"
    REPORT_TEXT = "evaluation.txt"
    CURVES = "training_curves.png"
    CONFUSION = "confusion_matrix.png"
    MODEL = "model.keras"
    SUMMARY = "summary.json"
    TENSORBOARD = "tensorboard"

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        match = _VERSION.match(os.path.basename(os.path.normpath(self.path)))
        self.version = int(match.group(1)) if match else None
        self.name = os.path.basename(os.path.dirname(os.path.normpath(self.path)))

    def __repr__(self) -> str:
        return f"RunFolder({self.path!r})"

    @classmethod
    def create(cls, name: str, root: str | os.PathLike = DEFAULT_ROOT) -> RunFolder:
        """Claims the next free `version_N` of run `name` under `root`.

        Args:
            name: The run's name (characters other than letters, digits, `_.-`
                become `_`).
            root: The folder of all runs (default `runs`).
        """
        safe = _NAME.sub("_", str(name)).strip("._") or "run"
        folder = os.path.join(os.fspath(root), safe)
        os.makedirs(folder, exist_ok=True)
        version = (_versions(folder) or [-1])[-1] + 1
        while True:
            path = os.path.join(folder, f"version_{version}")
            try:
                os.mkdir(path)  # atomic: a concurrent run gets FileExistsError
                return cls(path)
            except FileExistsError:
                version += 1

    @classmethod
    def resolve(cls, path: str | os.PathLike) -> RunFolder:
        """The run folder `path` names: a `version_N` folder, or a run's folder (its latest version).

        Raises:
            DataError: no such folder, or a run folder without versions.
        """
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise DataError(
                f"{path}: no such run folder (expected runs/<name> or runs/<name>/version_N)"
            )
        if _VERSION.match(os.path.basename(os.path.normpath(path))):
            return cls(path)
        versions = _versions(path)
        if not versions:
            raise DataError(f"{path}: has no version_N folders; is it a run folder?")
        return cls(os.path.join(path, f"version_{versions[-1]}"))

    def file(self, name: str) -> str:
        """The path of `name` inside this run folder."""
        return os.path.join(self.path, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.file(name))

    # ----------------------------------------------------------------- writing
    def save_config(self, config: dict[str, Any]) -> str:
        """Writes the resolved config as `config.json`."""
        write_json_atomic(self.file(self.CONFIG), config)
        return self.file(self.CONFIG)

    def save_report(self, report: Any) -> str:
        """Writes an `EvaluationReport` as `evaluation.json` and `evaluation.txt`."""
        report.save_json(self.file(self.REPORT_JSON))
        write_text_atomic(self.file(self.REPORT_TEXT), report.to_text() + "\n")
        return self.file(self.REPORT_JSON)

    def save_history(self, history: Any) -> str:
        """Writes a history (a `TrainingHistory` or a dict name -> values) as
        `history.json` and `history.csv`, for runs whose training did not (`fit`
        writes them itself when the folder is its `training.logging.directory`)."""
        data = history.to_dict() if hasattr(history, "to_dict") else {"history": dict(history)}
        write_json_atomic(self.file(self.HISTORY_JSON), data)
        series = data["history"]
        rows = max((len(v) for v in series.values()), default=0)
        lines = [["epoch", *series]] + [
            [str(i), *(str(v[i]) if i < len(v) else "" for v in series.values())]
            for i in range(rows)
        ]
        write_text_atomic(
            self.file(self.HISTORY_CSV),
            "".join(",".join(line) + "\n" for line in lines),
        )
        return self.file(self.HISTORY_JSON)

    def save_summary(self, summary: dict[str, Any]) -> str:
        """Writes `summary.json`: the caller's entries plus the run's files."""
        files = sorted(
            name
            for name in os.listdir(self.path)
            if not name.startswith(".") and ".tmp-" not in name
        )
        write_json_atomic(self.file(self.SUMMARY), {"run": self.path, **summary, "files": files})
        return self.file(self.SUMMARY)


def load_history(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a training history from a run folder, `history.json` or `history.csv`.

    Returns:
        `{"history": {name: [values]}, "learning_rates": [...], "epochs": [...]}`
        (the last two may be empty), which `plot_training_curves` draws.

    Raises:
        DataError: no history file, or one that is not a history.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        run = RunFolder.resolve(path)
        for name in (RunFolder.HISTORY_JSON, RunFolder.HISTORY_CSV):
            if run.exists(name):
                return load_history(run.file(name))
        raise DataError(f"{run.path}: has no {RunFolder.HISTORY_JSON} or {RunFolder.HISTORY_CSV}")
    if not os.path.isfile(path):
        raise DataError(f"{path}: history file not found")
    if path.lower().endswith(".csv"):
        return _history_from_csv(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable JSON history ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a history is a JSON object, got {type(data).__name__}")
    if isinstance(data.get("history"), dict):  # TrainingHistory.to_dict()
        return {
            "history": data["history"],
            "learning_rates": list(data.get("learning_rates") or []),
            "epochs": list(data.get("epochs") or []),
        }
    return {
        "history": data,
        "learning_rates": [],
        "epochs": [],
    }  # Keras History.history


def _history_from_csv(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DataError(f"{path}: has no epochs")
    series: dict[str, list[float]] = {}
    epochs: list[int] = []
    for line, row in enumerate(rows, start=2):
        for name, text in row.items():
            if name is None or text in (None, ""):
                continue
            try:
                value = float(text)
            except ValueError:
                raise DataError(
                    f"{path}:{line}: column {name!r} is not a number: {text!r}"
                ) from None
            if name == "epoch":
                epochs.append(int(value))
            else:
                series.setdefault(name, []).append(value)
    learning_rates = series.pop("learning_rate", None) or series.pop("lr", None) or []
    return {"history": series, "learning_rates": learning_rates, "epochs": epochs}
