"""What an adaptive JIT measured, kept as a JIT dataset it can learn from.

Every measurement `AdaptiveJIT` makes (the O0 probe's time per call and compile
time, each build's compile time, each time per call it observed while tiering or
autotuning) goes into one record per function, with the IR and the probe's
runtime metrics: a `keras_trainer.jit_dataset/1` record, so `read_dataset`,
`Workload` and `ModelTrainer` read the file like any collected dataset. A record
may measure only some strategies; its `label` is the fastest of those it
measured (`measured_strategies` lists them).

The file is rewritten whole at each change, to a temporary file that then
replaces it (`save_dataset`): a kill leaves the previous complete file, never a
half-written one. An existing file is read first and added to.

Example:

>>> log = MeasurementLog("runs/measured.json")
>>> log.record(ir_text, "entry", runtime, timings_ns={"O0": 5200.0},
...            compile_times_ms={"O0": 1.2, "O2": 4.8})
>>> len(log)
1
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Optional, Union

from keras_trainer.errors import DataError
from keras_trainer.jit.strategies import STRATEGY_NAMES

SOURCE = "AdaptiveJIT"


def _key(ir_text: str, entry: str) -> str:
    return hashlib.sha256(f"{entry}\0{ir_text}".encode()).hexdigest()[:16]


class MeasurementLog:
    """A JIT dataset file that grows with a JIT's own measurements.

    Args:
        path: the dataset file (`.json`, or `.json.gz` for gzip); created on the
            first record, read and added to when it exists.
        strategies: the strategy names of a new file (default: the library's five).

    Raises:
        DataError: an existing file that is not a JIT dataset, or one of other
            strategies.
    """

    def __init__(
        self, path: Union[str, os.PathLike], strategies: Sequence[str] = tuple(STRATEGY_NAMES)
    ):
        from keras_trainer.jit.data.collect import DATASET_FORMAT, read_dataset

        self.path = os.fspath(path)
        if os.path.exists(self.path):
            self.data = read_dataset(self.path)
            if list(self.data["strategies"]) != list(strategies):
                raise DataError(
                    f"{self.path}: records strategies {self.data['strategies']}, this JIT "
                    f"measures {list(strategies)}; record to another file"
                )
        else:
            self.data = {
                "format": DATASET_FORMAT,
                "strategies": list(strategies),
                "metadata": {"source": SOURCE},
                "samples": [],
            }
        self._index = {
            s.get("key") or _key(s["ir"], s["entry"]): i for i, s in enumerate(self.samples)
        }

    @property
    def samples(self) -> list:
        return self.data["samples"]

    def __len__(self) -> int:
        return len(self.samples)

    def record(
        self,
        ir_text: str,
        entry: str,
        runtime: Mapping[str, float],
        timings_ns: Optional[Mapping[str, float]] = None,
        compile_times_ms: Optional[Mapping[str, float]] = None,
        args: Optional[Sequence] = None,
        family: Optional[str] = None,
    ) -> tuple[dict, bool]:
        """Adds measurements of `@entry` of `ir_text` (a later one of a strategy
        replaces the earlier) and rewrites the file atomically.

        Args:
            runtime: the O0 probe's runtime metrics (the model's runtime features).
            timings_ns: strategy -> nanoseconds per call measured.
            compile_times_ms: strategy -> milliseconds to compile measured.
            args: the probe's arguments; family: a program family, if known.

        Returns:
            `(record, new)`: the function's record and whether it is a new one.
        """
        strategies = self.data["strategies"]
        measured = {}
        for what, values in (("timings_ns", timings_ns), ("compile_times_ms", compile_times_ms)):
            measured[what] = {}
            for name, value in (values or {}).items():
                if name not in strategies:
                    raise DataError(f"{what}: {name!r} is not one of {strategies}")
                if not float(value) > 0:
                    raise DataError(f"{what}[{name!r}]: a time must be > 0, got {value!r}")
                measured[what][name] = float(value)
        key = _key(ir_text, entry)
        new = key not in self._index
        if new:
            record = {"name": f"{entry}@{key}", "key": key, "ir": ir_text, "entry": entry}
            record.update(timings_ns={}, compile_times_ms={}, source=SOURCE)
            self._index[key] = len(self.samples)
            self.samples.append(record)
        record = self.samples[self._index[key]]
        record["runtime"] = {k: float(v) for k, v in runtime.items()}
        if args is not None:
            record["args"] = list(args)
        if family is not None:
            record["family"] = family
        for what, values in measured.items():
            record.setdefault(what, {}).update(values)
        timed = record["timings_ns"]
        record["measured_strategies"] = [s for s in strategies if s in timed]
        if timed:
            fastest = min(timed, key=timed.get)
            record["label"], record["label_name"] = strategies.index(fastest), fastest
        else:  # compile times only: the probe's O0 is the only run it knows
            record["label"], record["label_name"] = 0, strategies[0]
        self.save()
        return record, new

    def save(self) -> str:
        from keras_trainer.jit.data.collect import save_dataset

        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        return save_dataset(self.data, self.path)
