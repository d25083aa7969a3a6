"""Collecting a JIT strategy dataset: measure every module under every strategy.

For each IR module (with an entry function, see `engine`), a worker
subprocess optimizes it under each strategy, MCJIT-compiles it, checks that
all strategies return the same result, and times it (warm-up, then the
median of `repeats` round-robin runs). The record keeps the runtime metrics
of the O0 baseline (what a JIT knows before it chooses: `exec_time_ns`,
`compile_time_ms`, `code_size_bytes`) and the label: the fastest strategy,
where strategies within `tie_tolerance` of the fastest count as tied and the
tie goes to the strategy that is best over the whole collection (lowest
geometric-mean slowdown; `tie_break="overall"`) or to the cheapest to compile
(`tie_break="cheapest"`); without a tie rule, timing noise between near-equal
strategies would decide the label. A module
whose worker crashes, hangs past `timeout_s`, or whose strategies disagree is
recorded under "failed" and the collection goes on.

Dataset JSON (format "keras_trainer.jit_dataset/1"):

    {"format": "keras_trainer.jit_dataset/1", "strategies": ["O0", ...],
     "metadata": {...},
     "samples": [{"name", "ir", "entry", "args", "runtime": {...}, "label": int,
                  "label_name", "timings_ns": {...}, "compile_times_ms": {...},
                  "result"}, ...],
     "failed": [{"name", "entry", "reason"}, ...]}

`read_dataset` also takes measurements of your own: a plain JSON list of
records `{"ir", "runtime", "timings_ns", "family"?, "name"?}` (the strategies
are the keys of `timings_ns`); in either form `entry` defaults to "entry" and
`label` to the fastest strategy when `timings_ns` measures all of them.

Example:

>>> dataset = collect_dataset(generate_corpus(10, seed=0), repeats=3)
>>> save_dataset(dataset, "data.json")
>>> ir_samples, runtime_data, labels = load_dataset("data.json")
"""

from __future__ import annotations

import concurrent.futures
import datetime
import gzip
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Optional

from keras_trainer.errors import DataError
from keras_trainer.jit.strategies import STRATEGIES, STRATEGY_NAMES, get_strategy

DATASET_FORMAT = "keras_trainer.jit_dataset/1"


def _module_fields(module, index: int) -> dict:
    if isinstance(module, dict):
        get = module.get
    else:

        def get(key, default=None):
            return getattr(module, key, default)

    ir_text = get("ir")
    if not isinstance(ir_text, str) or not ir_text.strip():
        raise DataError(f"modules[{index}]: 'ir' must be a non-empty string of LLVM IR")
    fields = {
        "name": get("name") or f"module_{index}",
        "ir": ir_text,
        "entry": get("entry") or "entry",
        "args": list(get("args") or []),
    }
    if get("family"):
        fields["family"] = str(get("family"))
    return fields


def choose_label(
    timings_ns: dict, strategies: list, tie_tolerance: float, preference: Optional[list] = None
) -> int:
    """Index of the fastest strategy; ties within `tie_tolerance` go by `preference`.

    Args:
        timings_ns: strategy name -> median time.
        strategies: names in label order.
        tie_tolerance: relative margin within which strategies tie.
        preference: names in tie-break order (default: `strategies` order).

    Example:

    >>> choose_label({"O0": 100, "O1": 50, "O2": 49}, ["O0", "O1", "O2"], 0.05)
    1
    """
    best = min(timings_ns[name] for name in strategies)
    for name in preference or strategies:
        if timings_ns[name] <= best * (1.0 + tie_tolerance):
            return strategies.index(name)
    raise AssertionError("unreachable: the best strategy is within tolerance of itself")


def overall_preference(samples: list, strategies: list) -> list:
    """Strategies ranked by geometric-mean slowdown against each sample's fastest.

    The strategy that is best over the whole collection comes first; it wins
    ties, so that a label departs from it only where another strategy is
    really faster.
    """

    def slowdown(name):
        return sum(
            math.log(r["timings_ns"][name] / max(1, min(r["timings_ns"].values()))) for r in samples
        )

    return sorted(strategies, key=lambda name: (slowdown(name), strategies.index(name)))


def label_samples(dataset: dict, tie_tolerance: float = 0.02, tie_break: str = "overall") -> dict:
    """(Re)computes every sample's label from its recorded timings, in place.

    Args:
        dataset: a dataset dict (from `collect_dataset` or `read_dataset`).
        tie_tolerance: relative margin within which strategies tie.
        tie_break: "overall" (ties go to the strategy with the lowest
            geometric-mean slowdown over the whole dataset) or "cheapest"
            (ties go to the cheapest to compile: lowest `compile_rank`, i.e.
            O0, O1, O3-scalar, O2, O3).

    Returns:
        The same dataset, with "label", "label_name" and the labelling rule
        in its metadata.
    """
    if tie_break not in ("overall", "cheapest"):
        raise DataError(f"tie_break must be 'overall' or 'cheapest', got {tie_break!r}")
    if tie_tolerance < 0:
        raise DataError(f"tie_tolerance must be >= 0, got {tie_tolerance}")
    names = dataset["strategies"]
    samples = dataset["samples"]
    if tie_break == "overall":
        preference = overall_preference(samples, names)
    else:
        from keras_trainer.jit.strategies import tie_preference

        known = all(name in STRATEGY_NAMES for name in names)
        preference = tie_preference(names) if known else list(names)
    for record in samples:
        record["label"] = choose_label(record["timings_ns"], names, tie_tolerance, preference)
        record["label_name"] = names[record["label"]]
    dataset.setdefault("metadata", {}).update(
        {"tie_tolerance": tie_tolerance, "tie_break": tie_break, "tie_preference": preference}
    )
    return dataset


def merge_collections(datasets: Sequence[dict]) -> dict:
    """One dataset from independent collections (passes) of the same modules.

    One collection's median hides the noise within a run, not between runs:
    each compile places the code anew (alignment), and a shared machine's
    load comes and goes over minutes. On the bundled C kernels, single
    collections on one machine agreed on 79-90 % of the labels. A module
    measured in every pass keeps, per strategy, the median of the passes'
    times (and compile times), and the passes' own times under
    "pass_timings_ns"; its runtime metrics are those of the merged baseline.
    A module that failed in any pass, was not measured in one, or whose
    result differs between passes, is recorded as failed. Labels are
    recomputed with the first pass's tie rule.

    Args:
        datasets: whole collections (from `collect_dataset`) of the same
            modules under the same strategies, in the order they ran.

    Raises:
        DataError: no datasets, or their strategies differ.
    """
    if not datasets:
        raise DataError("merge_collections: no datasets to merge")
    first = datasets[0]
    names = first["strategies"]
    for k, dataset in enumerate(datasets[1:], start=1):
        if dataset["strategies"] != names:
            raise DataError(
                f"merge_collections: pass {k} measured strategies {dataset['strategies']}, "
                f"pass 0 measured {names}"
            )
    by_pass = [{r["name"]: r for r in d["samples"]} for d in datasets]
    failed = {r["name"]: r for d in datasets for r in d["failed"]}
    samples = []
    for record in first["samples"]:
        runs = [measured.get(record["name"]) for measured in by_pass]
        missing = [k for k, run in enumerate(runs) if run is None]
        if missing:  # failed in a later pass (and listed) or not measured there
            failed.setdefault(
                record["name"],
                {
                    "name": record["name"],
                    "entry": record["entry"],
                    "reason": f"not measured in pass {missing[0]}",
                },
            )
            continue
        # Compared as JSON text, so that NaN equals NaN and -0.0 differs from 0.0.
        if len({json.dumps(run["result"]) for run in runs}) > 1:
            failed[record["name"]] = {
                "name": record["name"],
                "entry": record["entry"],
                "reason": "results differ between passes: "
                + ", ".join(repr(run["result"]) for run in runs),
            }
            continue
        timings = {n: int(statistics.median(run["timings_ns"][n] for run in runs)) for n in names}
        merged = dict(
            record,
            timings_ns=timings,
            compile_times_ms={
                n: round(statistics.median(run["compile_times_ms"][n] for run in runs), 4)
                for n in names
            },
            runtime=dict(
                record["runtime"],
                exec_time_ns=timings[names[0]],
                compile_time_ms=round(
                    statistics.median(run["runtime"]["compile_time_ms"] for run in runs), 4
                ),
            ),
            pass_timings_ns=[run["timings_ns"] for run in runs],
        )
        samples.append(merged)
    metadata = dict(
        first["metadata"],
        passes=len(datasets),
        created=datasets[-1]["metadata"].get("created"),
    )
    seconds = [d["metadata"].get("collection_seconds") for d in datasets]
    if all(isinstance(s, (int, float)) for s in seconds):
        metadata["collection_seconds"] = round(sum(seconds), 1)
    dataset = {
        "format": DATASET_FORMAT,
        "strategies": list(names),
        "metadata": metadata,
        "samples": samples,
        "failed": list(failed.values()),
    }
    return label_samples(
        dataset,
        first["metadata"].get("tie_tolerance", 0.02),
        first["metadata"].get("tie_break", "overall"),
    )


def run_worker(job: dict, timeout_s: float) -> dict:
    """Runs one measuring job in a fresh subprocess; failures come back as `ok: False`."""
    from keras_trainer.jit.runtime.worker import worker_env

    env = worker_env()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "keras_trainer.jit.runtime.worker"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "reason": f"timed out after {timeout_s:g} s"}
    if process.returncode != 0:
        if process.returncode < 0:
            try:
                what = signal.Signals(-process.returncode).name
            except ValueError:
                what = f"signal {-process.returncode}"
            reason = f"worker crashed ({what})"
        else:
            reason = f"worker exited with status {process.returncode}"
        tail = process.stderr.strip().splitlines()[-1:] if process.stderr else []
        return {"ok": False, "reason": reason + (f": {tail[0]}" if tail else "")}
    try:
        return json.loads(process.stdout)
    except json.JSONDecodeError:
        return {"ok": False, "reason": f"worker wrote no result: {process.stdout[-200:]!r}"}


def collect_dataset(
    modules: Iterable,
    strategies: Optional[list] = None,
    repeats: int = 5,
    warmup: int = 1,
    timeout_s: float = 60.0,
    tie_tolerance: float = 0.02,
    tie_break: str = "overall",
    workers: int = 1,
    progress: Optional[Callable[[int, int, dict], None]] = None,
    metadata: Optional[dict] = None,
    min_sample_us: float = 0.0,
) -> dict:
    """Measures `modules` under every strategy and labels each with the fastest.

    Args:
        modules: dicts or objects with `ir` (str), `entry` (default
            "entry"), `args` (list, default empty) and `name`.
        strategies: strategies (names, `Strategy` objects, e.g. from
            `strategies_from_config(config.jit.strategies)`) in label order,
            cheapest to compile first; default all of `STRATEGIES`. The first
            is the baseline of the runtime metrics.
        repeats: timed runs per strategy (the median is kept).
        warmup: untimed runs per strategy before timing.
        timeout_s: wall-clock limit of one module's worker.
        tie_tolerance: relative margin within which strategies tie.
        tie_break: who wins a tie, see `label_samples`.
        workers: modules measured at once (1 gives the least timing noise).
        progress: called as `progress(done, total, record)` after each module
            (labels are set once all modules are measured).
        metadata: extra entries for the dataset's "metadata".
        min_sample_us: time each sample over enough back-to-back calls to
            last about this long at O0 (per-call time is kept); 0 times
            single calls.

    Returns:
        The dataset dict (see the module docstring).
    """
    chosen = [get_strategy(s) for s in (strategies or STRATEGY_NAMES)]
    names = [s.name for s in chosen]
    builtin = [s.name for s in STRATEGIES]
    # Built-in strategies travel by name, config-declared ones with their pipeline.
    specs = [s.name if s in STRATEGIES and s.name in builtin else s.get_config() for s in chosen]
    if tie_break not in ("overall", "cheapest"):
        raise DataError(f"tie_break must be 'overall' or 'cheapest', got {tie_break!r}")
    if repeats < 1 or warmup < 0 or timeout_s <= 0 or tie_tolerance < 0 or workers < 1:
        raise DataError(
            "collect_dataset: need repeats >= 1, warmup >= 0, timeout_s > 0, "
            f"tie_tolerance >= 0, workers >= 1; got repeats={repeats}, warmup={warmup}, "
            f"timeout_s={timeout_s}, tie_tolerance={tie_tolerance}, workers={workers}"
        )
    items = [_module_fields(m, i) for i, m in enumerate(modules)]
    jobs = [
        dict(
            item,
            strategies=specs,
            warmup=warmup,
            repeats=repeats,
            min_sample_ns=min_sample_us * 1000.0,
        )
        for item in items
    ]

    def work(job):
        return job, run_worker(job, timeout_s)

    samples, failed = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (job, outcome) in enumerate(pool.map(work, jobs), start=1):
            record = _record(job, outcome)
            (samples if outcome.get("ok") else failed).append(record)
            if progress is not None:
                progress(done, len(jobs), record)
    info = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu": host_cpu(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "llvm_version": _llvm_version(),
        "repeats": repeats,
        "warmup": warmup,
        "runtime_baseline": names[0],
        "min_sample_us": min_sample_us,
    }
    info.update(metadata or {})
    dataset = {
        "format": DATASET_FORMAT,
        "strategies": names,
        "metadata": info,
        "samples": samples,
        "failed": failed,
    }
    return label_samples(dataset, tie_tolerance, tie_break)


def _record(job: dict, outcome: dict) -> dict:
    """A dataset sample (labels set later) from a measured job, or a failed-module entry."""
    if not outcome.get("ok"):
        return {
            "name": job["name"],
            "entry": job["entry"],
            "reason": outcome.get("reason", "unknown"),
        }
    record = {
        "name": job["name"],
        "ir": job["ir"],
        "entry": job["entry"],
        "args": job["args"],
        "runtime": outcome["runtime"],
        "label": None,
        "label_name": None,
        "timings_ns": outcome["timings_ns"],
        "compile_times_ms": outcome["compile_times_ms"],
        "result": outcome["result"],
    }
    if "family" in job:
        record["family"] = job["family"]
    return record


def host_cpu() -> str:
    """The host CPU's model name (recorded with measurements, printed by benchmarks)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _llvm_version() -> str:
    import llvmlite.binding as llvm

    return ".".join(str(v) for v in llvm.llvm_version_info)


def save_dataset(dataset: dict, path: str) -> str:
    """Writes a dataset JSON atomically (temp file in the same folder, then rename).

    A path ending in `.gz` is written gzip-compressed (IR text compresses
    about tenfold); `read_dataset` reads both.
    """
    from keras_trainer.core.saving.atomic import atomic_path

    path = os.fspath(path)
    text = json.dumps(dataset, separators=(",", ":")).encode()
    with atomic_path(path) as temp, open(temp, "wb") as raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                f.write(text)
        else:
            raw.write(text)
    return path


def read_dataset(path: str) -> dict:
    """Reads and validates a dataset JSON; returns the whole dict.

    Raises:
        DataError: missing file, bad JSON, wrong format, or a bad record (the
            message names the file, the record index and the key).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: dataset file not found") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read the gzip-compressed dataset: {error}") from None
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: not UTF-8 text; a dataset is JSON (optionally gzip-compressed)"
        ) from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON: {error}") from None
    if isinstance(data, list):
        data = _dataset_from_records(data, path)
    if not isinstance(data, dict) or data.get("format") != DATASET_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DataError(
            f"{path}: 'format' must be {DATASET_FORMAT!r}, got {found!r} (or give a plain "
            "JSON list of records)"
        )
    strategies = data.get("strategies")
    if (
        not isinstance(strategies, list)
        or not strategies
        or not all(isinstance(s, str) for s in strategies)
    ):
        raise DataError(f"{path}: 'strategies' must be a non-empty list of names")
    samples = data.get("samples")
    if not isinstance(samples, list):
        raise DataError(f"{path}: 'samples' must be a list")
    for i, record in enumerate(samples):
        _check_record(record, strategies, f"{path}: samples[{i}]")
    return data


def _dataset_from_records(records: list, path: str) -> dict:
    """A plain JSON list of records as a dataset: the strategies are the keys of
    the first record's `timings_ns`, which every record must measure."""
    first = records[0] if records and isinstance(records[0], dict) else {}
    timings = first.get("timings_ns")
    if not isinstance(timings, dict) or not timings:
        raise DataError(
            f"{path}: samples[0]: a plain list of records needs 'timings_ns' "
            "({strategy: time}) in every record; the strategies are its keys"
        )
    return {"format": DATASET_FORMAT, "strategies": list(timings), "samples": records}


def _check_record(record, strategies: list, where: str) -> None:
    """Checks one sample in place: `ir` and `runtime` are required; `entry`
    defaults to "entry"; `label` may be left out when `timings_ns` measures every
    strategy (it is then the fastest, ties to the first in `strategies`)."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: must be an object")
    record.setdefault("entry", "entry")
    for key, kind in (("ir", str), ("entry", str), ("runtime", dict)):
        if key not in record:
            raise DataError(f"{where}: missing key '{key}'")
        if not isinstance(record[key], kind):
            raise DataError(
                f"{where}['{key}']: expected {kind.__name__}, got {type(record[key]).__name__}"
            )
    timings = record.get("timings_ns")
    if timings is not None and not isinstance(timings, dict):
        raise DataError(f"{where}['timings_ns']: expected an object")
    if "label" not in record:
        missing = [n for n in strategies if not isinstance((timings or {}).get(n), (int, float))]
        if missing:
            raise DataError(
                f"{where}: needs 'label' (a strategy index) or 'timings_ns' with a time for "
                f"every strategy (none for {missing})"
            )
        record["label"] = choose_label(timings, strategies, 0.0)
    label = record["label"]
    if not isinstance(label, int) or isinstance(label, bool):
        raise DataError(f"{where}['label']: expected int, got {type(label).__name__}")
    if not 0 <= label < len(strategies):
        raise DataError(
            f"{where}['label']: {label} is not a strategy index 0..{len(strategies) - 1}"
        )


def load_dataset(path: str) -> tuple:
    """Loads a dataset JSON into `(ir_samples, runtime_data, labels)`.

    These three lists are what `ModelTrainer.prepare_training_data` takes.

    Raises:
        DataError: see `read_dataset`.
    """
    data = read_dataset(path)
    samples = data["samples"]
    return (
        [r["ir"] for r in samples],
        [r["runtime"] for r in samples],
        [r["label"] for r in samples],
    )


def dataset_fingerprint(path: str) -> str:
    """SHA-256 of a dataset file's bytes: identifies the file a model's split refers to."""
    from keras_trainer.core.evaluating.held_out import file_fingerprint

    return file_fingerprint(path)


def dataset_outcomes(data: dict, strategies: Optional[list] = None) -> list:
    """Per-sample optimization results for `ModelTrainer.prepare_training_data`:
    the measured times (`{strategy: ns}`) when every record has them for every
    strategy in `strategies` (default: the dataset's), else the recorded labels
    (as indices into `strategies`).

    Raises:
        DataError: naming the strategies of `strategies` that the dataset does not have.
    """
    names = list(strategies or data["strategies"])
    samples = data["samples"]
    if samples and all(
        isinstance(r.get("timings_ns"), dict) and set(names) <= set(r["timings_ns"])
        for r in samples
    ):
        return [{name: r["timings_ns"][name] for name in names} for r in samples]
    have = list(data["strategies"])
    missing = [name for name in names if name not in have]
    if missing:
        raise DataError(
            f"the dataset has no strategy {missing} (its strategies are {have}, the model's or "
            f"config's are {names}); name the dataset's strategies in jit.strategies"
        )
    unknown = sorted({have[r["label"]] for r in samples} - set(names))
    if unknown:
        raise DataError(
            f"the dataset labels samples with strategies {unknown} that are not among {names}"
        )
    return [names.index(have[r["label"]]) for r in samples]
