"""`keras-trainer jit-replay`: what each tiering policy costs on a measured workload.

    keras-trainer jit-replay --calls runtime:0.01:100 --seed 0
    keras-trainer jit-replay --data my_kernels.json --model cost_model.keras --json

Registered by `keras_trainer.jit.cli.register`.
"""

from __future__ import annotations

import argparse
import json


def register_replay(subparsers) -> None:
    """Adds the `jit-replay` verb to `subparsers`."""
    replay = subparsers.add_parser(
        "jit-replay",
        help="Replay tiering policies on a measured workload: total seconds and regret.",
        description=(
            "Draws a call count per function of a measured dataset (--calls), fits every policy "
            "on the other program families (--folds family folds) and replays it against the "
            "measured per-call and compile times. Prints each policy's total (compile + calls) "
            "and regret (total / the oracle's, which knows every call count)."
        ),
    )
    replay.add_argument("--data", help="JIT dataset (default: the bundled C-kernel corpus)")
    replay.add_argument(
        "--model",
        help="trained cost model (keras_trainer.jit.model.cost_model); adds 'cost_benefit+model'",
    )
    replay.add_argument(
        "--calls",
        default=None,
        help=(
            "call counts: runtime:LO:HI (total O0 seconds per function, log-uniform; default "
            "runtime:0.01:100), loguniform:LO:HI, zipf:S:MAX or fixed:N"
        ),
    )
    replay.add_argument("--seed", type=int, default=0, help="seed of the call counts and folds")
    replay.add_argument(
        "--folds",
        type=int,
        default=5,
        help="family folds to fit and replay out of fold (0: leave-family-out)",
    )
    replay.add_argument(
        "--policies",
        help="comma-separated policy names (default: every always:S and the online policies)",
    )
    replay.add_argument(
        "--background",
        action="store_true",
        help=(
            "replay a JIT that recompiles on a background thread (AdaptiveJIT's default on more "
            "than one CPU): totals are the caller's wall time"
        ),
    )
    replay.add_argument(
        "--json",
        action="store_true",
        help='print {"oracle_s": .., "policies": {NAME: {"total_s": .., "regret": ..}}}',
    )
    replay.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    """Handler of `keras-trainer jit-replay`; bad input raises `KerasTrainerError`."""
    from keras_trainer.jit import DEFAULT_DATASET_PATH
    from keras_trainer.jit.tiering.policy_eval import compare_policies, format_comparison
    from keras_trainer.jit.tiering.workload import DEFAULT_CALLS, Workload, check_calls_spec

    calls = args.calls or DEFAULT_CALLS
    check_calls_spec(calls)  # a bad spec is reported before the dataset is read
    model = None
    if args.model:
        from keras_trainer.jit.model.cost_model import CostModel

        model = CostModel.load(args.model)
    data = args.data or DEFAULT_DATASET_PATH
    workload = Workload.from_dataset(data, calls=calls, seed=args.seed)
    names = [n.strip() for n in args.policies.split(",") if n.strip()] if args.policies else None
    result = compare_policies(
        workload,
        names,
        folds=args.folds or None,
        model=model,
        seed=args.seed,
        background=args.background,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        folds = f"{args.folds} family folds" if args.folds else "leave-family-out"
        if args.background:
            folds += ", recompiles on a background thread"
        print(f"{data}: {len(workload)} functions, calls {calls}, seed {args.seed}, {folds}")
        print(format_comparison(result))
    return 0
