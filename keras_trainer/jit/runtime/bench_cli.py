"""`keras-trainer jit-bench`: real kernels, real calls, wall time per tiering policy.

    keras-trainer jit-bench --calls runtime:0.001:10 --kernels 30 --seconds 60
    keras-trainer jit-bench --data my_kernels.json --trusted --json

Where `jit-replay` replays measured times, `jit-bench` runs the code: it picks
`--kernels` functions of a measured dataset (default: the bundled C-kernel corpus;
every record needs `ir` and `args`; sandboxed, kernels the sandbox refuses, such as
those calling libc, are skipped), draws each one's call count from `--calls`
as `jit-replay` does, scales the counts down by one factor so that the run takes
about `--seconds` (from the dataset's measured times), and runs every kernel that
many times through `AdaptiveJIT.run_policies` under `recommended` (the shipped
parameters), `always:O3` and `tiered` (the best K and level, fitted in hindsight on
the dataset's other functions with the same scaled call counts), each from fresh
builds, in rotating order, in one sandboxed worker per kernel (or in this process
with `--trusted`), `--repeats` times (the fastest run of each kernel and policy
counts: a busy machine adds noise, never speed). Recompiles run on a background
thread when the process may use more than one CPU (`AdaptiveJIT(background_compile=)`;
`--no-background` compiles on the calling thread). It prints each policy's wall
seconds, builds and calls included, and the ratio to `always:O3`.

Registered by `keras_trainer.jit.cli.register`.
"""

from __future__ import annotations

import argparse
import json

POLICIES = ("recommended", "always:O3", "tiered")


def register_bench(subparsers) -> None:
    """Adds the `jit-bench` verb to `subparsers`."""
    bench = subparsers.add_parser(
        "jit-bench",
        help="Run real kernels through AdaptiveJIT: wall time per tiering policy.",
        description=(
            "Runs kernels of a measured dataset with call counts drawn from --calls (scaled "
            "down to about --seconds) through AdaptiveJIT under recommended, always:O3 and the "
            "best-K tiered policy; prints each policy's wall seconds (compile included) and "
            "its ratio to always:O3."
        ),
    )
    bench.add_argument("--data", help="JIT dataset with IR and args (default: bundled C kernels)")
    bench.add_argument(
        "--calls",
        default="runtime:0.001:10",
        help="call-count spec as in jit-replay (default runtime:0.001:10), before scaling",
    )
    bench.add_argument("--kernels", type=int, default=30, help="kernels to run (default 30)")
    bench.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="scale the call counts down so the run takes about this long (default 60)",
    )
    bench.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each kernel under each policy; the fastest counts (default 3)",
    )
    bench.add_argument("--seed", type=int, default=0, help="seed of the kernels and call counts")
    bench.add_argument(
        "--trusted",
        action="store_true",
        help="build and call in this process (live tiering; only for IR you trust)",
    )
    bench.add_argument(
        "--timeout-s",
        type=float,
        default=300.0,
        help="seconds each kernel's runs may take in the sandboxed worker",
    )
    bench.add_argument(
        "--no-background",
        action="store_true",
        help=(
            "compile every build on the calling thread (default: recompiles run on a background "
            "thread when the process may use more than one CPU, as AdaptiveJIT does)"
        ),
    )
    bench.add_argument("--record-to", help="also record every measurement to this dataset file")
    bench.add_argument(
        "--json",
        action="store_true",
        help=(
            'print {"policies": {NAME: {"wall_s": .., "ratio_to_always_O3": ..}}, '
            '"per_kernel": [...], ...}'
        ),
    )
    bench.set_defaults(handler=run_bench)


def plan(workload, kernels: int, seconds: float, seed: int, usable=None, repeats: int = 1) -> tuple:
    """`(chosen, calls, scale, rest)`: the kernels' indices (drawn with `seed` among
    those `usable(sample)` accepts), their scaled call counts, the scale factor and
    the other functions' workload (with the same scaling)."""
    import numpy as np

    from keras_trainer.errors import ConfigError

    if kernels < 1 or repeats < 1:
        raise ConfigError(f"--kernels and --repeats must be >= 1, got {kernels} and {repeats}")
    if not seconds > 0:
        raise ConfigError(f"--seconds must be > 0, got {seconds}")
    rng = np.random.default_rng(seed)
    n = len(workload)
    chosen = []
    for i in rng.permutation(n).tolist():
        if len(chosen) == kernels:
            break
        if usable is None or usable(workload.samples[i]):
            chosen.append(i)
    if not chosen:
        raise ConfigError("--data: no kernel can run here (see --trusted)")
    chosen = np.sort(chosen)
    # What the oracle's choice costs, per policy run: the whole run is about 3x that.
    expected = workload.take(chosen).oracle().total_s * len(POLICIES) * repeats
    scale = min(1.0, seconds / expected) if expected > 0 else 1.0
    scaled = np.maximum(1, np.round(workload.calls * scale)).astype(np.int64)
    rest = np.setdiff1d(np.arange(n), chosen)
    rest_workload = workload.with_calls(scaled).take(rest if len(rest) else chosen)
    return chosen, scaled[chosen], scale, rest_workload


def _time_kernel(jit, sample: dict, i: int, count: int, policies: dict, position, repeats, data):
    """One kernel under every policy, `repeats` times in rotating order; the fastest counts."""
    from keras_trainer.errors import DataError

    if "args" not in sample:
        raise DataError(f"{data}: samples[{i}] has no 'args' to call its entry with")
    names = list(policies)
    row = {"name": sample.get("name", f"samples[{i}]"), "calls": count}
    for repeat in range(repeats):
        shift = (position + repeat) % len(names)
        order = names[shift:] + names[:shift]
        outcomes = jit.run_policies(
            sample["ir"], sample["entry"], sample["args"], count, [policies[n] for n in order]
        )
        if len({json.dumps(o["result"]) for o in outcomes}) > 1:
            raise DataError(f"{data}: samples[{i}] gives different results under {order}")
        for name, outcome in zip(order, outcomes):
            if name not in row or outcome["wall_s"] < row[name]["wall_s"]:
                row[name] = {"wall_s": outcome["wall_s"], "strategy": outcome["strategy"]}
    return row


def run_bench(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer jit-bench`; bad input raises `KerasTrainerError`."""
    import datetime
    import os
    import platform

    from keras_trainer.errors import DataError
    from keras_trainer.jit import DEFAULT_DATASET_PATH
    from keras_trainer.jit.runtime.adaptive import AdaptiveJIT
    from keras_trainer.jit.tiering.policies import TieredPolicy
    from keras_trainer.jit.tiering.workload import Workload, check_calls_spec

    check_calls_spec(args.calls)
    data = args.data or DEFAULT_DATASET_PATH
    workload = Workload.from_dataset(data, calls=args.calls, seed=args.seed)

    def sandboxable(sample: dict) -> bool:
        """Untrusted runs skip kernels the sandbox refuses (calls into libc, ...)."""
        from keras_trainer.jit.runtime.sandbox import check_untrusted_ir

        try:
            check_untrusted_ir(sample["ir"], sample["entry"])
        except DataError:
            return False
        return "args" in sample

    usable = None if args.trusted else sandboxable
    chosen, calls, scale, rest = plan(
        workload, args.kernels, args.seconds, args.seed, usable, args.repeats
    )
    policies = {
        "recommended": "recommended",
        "always:O3": "always:O3",
        "tiered": TieredPolicy().fit(rest),
    }
    jit = AdaptiveJIT(
        None,
        trusted=args.trusted,
        timeout_s=args.timeout_s,
        record_to=args.record_to,
        background_compile=False if args.no_background else None,
    )
    names = list(policies)
    detail = [
        _time_kernel(jit, workload.samples[i], i, count, policies, position, args.repeats, data)
        for position, (i, count) in enumerate(zip(chosen.tolist(), calls.tolist()))
    ]
    totals = {name: sum(row[name]["wall_s"] for row in detail) for name in names}
    reference = totals["always:O3"]
    report = {
        "data": data,
        "kernels": len(chosen),
        "calls": args.calls,
        "scale": scale,
        "total_calls": int(calls.sum()),
        "repeats": args.repeats,
        "sandboxed": not args.trusted,
        "background_compile": jit.background_compile,
        "tiered": policies["tiered"].describe(),
        "recommended": jit._policy("recommended").describe(),
        "device": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "date": datetime.date.today().isoformat(),
        "policies": {
            name: {"wall_s": totals[name], "ratio_to_always_O3": totals[name] / reference}
            for name in names
        },
        "per_kernel": detail,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    where = "in this process (trusted)" if args.trusted else "in sandboxed workers"
    if jit.background_compile:
        where += ", recompiles on a background thread"
    print(
        f"{data}: {len(chosen)} kernels, calls {args.calls} x {scale:.3g} "
        f"({report['total_calls']} calls per policy), {where}"
    )
    tiered = report["tiered"]
    print(f"tiered: K = {tiered['threshold_calls']:g} calls, then {tiered['level']}")
    print(f"{'policy':<14} {'wall_s':>10} {'/ always:O3':>12}")
    for name in sorted(names, key=totals.get):
        ratio = report["policies"][name]["ratio_to_always_O3"]
        print(f"{name:<14} {totals[name]:>10.3f} {ratio:>12.4f}")
    return 0
