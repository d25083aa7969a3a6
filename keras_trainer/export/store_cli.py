"""`keras-trainer models add|list|show|promote|rollback`: the versioned model store."""

from __future__ import annotations

import argparse
import json

from keras_trainer.errors import ModelStoreError


def register(subparsers) -> None:
    """Adds the `models` command (with its sub-commands) to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "models",
        help="versioned model store: add, list, show, promote, rollback",
        description=(
            "Keep numbered model versions with their metadata in a store folder and point the "
            "'production' alias at one; `CompiledInferenceLayer` and `AdaptiveJIT` load "
            "'STORE@production'."
        ),
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        default=None,
        help="store folder (default: $KERAS_TRAINER_MODEL_STORE, else models/store)",
    )
    verbs = parser.add_subparsers(dest="models_command", required=True)

    add = verbs.add_parser("add", parents=[common], help="store a saved model as the next version")
    add.add_argument("model", help="a .keras or .h5 model file")
    add.add_argument(
        "--metrics",
        help="JSON file of the model's metrics on its stored test split "
        "(e.g. the report of `train --report`)",
    )
    add.add_argument("--data", help="the training data file (its SHA-256 is recorded)")
    add.add_argument(
        "--onnx", action="store_true", help="also export the model to ONNX into the version"
    )
    add.add_argument("--notes", default="", help="free text stored with the version")
    add.add_argument("--promote", action="store_true", help="point 'production' at the new version")
    add.set_defaults(handler=_add)

    listing = verbs.add_parser("list", parents=[common], help="list versions and aliases")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)

    show = verbs.add_parser("show", parents=[common], help="print a version's metadata")
    show.add_argument("version", nargs="?", default="production", help="number or alias")
    show.set_defaults(handler=_show)

    promote = verbs.add_parser("promote", parents=[common], help="point an alias at a version")
    promote.add_argument("version", help="version number")
    promote.add_argument(
        "--alias", default="production", help="the alias to move (default production)"
    )
    promote.set_defaults(handler=_promote)

    rollback = verbs.add_parser(
        "rollback", parents=[common], help="point an alias back at its previous version"
    )
    rollback.add_argument(
        "--alias", default="production", help="the alias to move back (default production)"
    )
    rollback.set_defaults(handler=_rollback)


def _store(args):
    from keras_trainer.export.store import ModelStore

    return ModelStore(args.store)


def _add(args: argparse.Namespace) -> int:
    import os
    import tempfile

    store = _store(args)
    metrics = None
    if args.metrics:
        try:
            with open(args.metrics, encoding="utf-8") as handle:
                metrics = json.load(handle)
        except (OSError, ValueError) as error:
            raise ModelStoreError(f"cannot read metrics file {args.metrics!r}: {error}") from error
        if not isinstance(metrics, dict):
            raise ModelStoreError(f"metrics file {args.metrics!r} must hold a JSON object")
        metrics = _flat_metrics(metrics)
    with tempfile.TemporaryDirectory(prefix="keras_trainer_store_") as workdir:
        onnx_path = None
        if args.onnx:
            from keras_trainer.export.onnx_export import export_onnx

            onnx_path = export_onnx(args.model, os.path.join(workdir, "model.onnx"))
        version = store.add(
            args.model, metrics=metrics, data_path=args.data, onnx_path=onnx_path, notes=args.notes
        )
    print(f"added version {version.version}: {version.model_path}")
    if args.promote:
        store.promote(version.version)
        print(f"production -> version {version.version}")
    return 0


# Shown first by `models list`: what the families' users judge a model by.
_HEADLINE = ("regret", "speedup_vs_best_fixed", "exact_match", "accuracy", "f1_macro", "rmse", "r2")


def _flat_metrics(metrics: dict) -> dict:
    """The numbers of an evaluation report (`train/evaluate --report`) in one dict.

    A report keeps its scores under "metrics" and, for the JIT model, its
    runtime figures under "runtime"; any other JSON object is taken as it is.
    """
    if not isinstance(metrics.get("metrics"), dict):
        return metrics
    flat = dict(metrics["metrics"])
    for key, value in (metrics.get("runtime") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat.setdefault(key, value)
    return flat


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    aliases = store.aliases()
    versions = store.versions()
    if args.json:
        print(json.dumps({"aliases": aliases, "versions": [v.info for v in versions]}, indent=2))
        return 0
    by_version: dict = {}
    for name, entry in aliases.items():
        by_version.setdefault(entry["version"], []).append(name)
    print(f"store: {store.root}")
    print(f"{'version':>7}  {'created':25s} {'task':14s} {'metrics':40s} aliases")
    for version in versions:
        info = version.info
        numbers = {
            k: v
            for k, v in (info.get("metrics") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        shown = [k for k in _HEADLINE if k in numbers] + [k for k in numbers if k not in _HEADLINE]
        metrics = ", ".join(
            f"{k}={numbers[k]:.4g}" if isinstance(numbers[k], float) else f"{k}={numbers[k]}"
            for k in shown[:3]
        )
        print(
            f"{version.version:>7}  {info.get('created', ''):25s} "
            f"{str(info.get('task') or ''):14s} "
            f"{metrics:40s} {', '.join(by_version.get(version.version, []))}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    version = _store(args).get(args.version)
    print(json.dumps({"directory": version.directory, **version.info}, indent=2))
    return 0


def _promote(args: argparse.Namespace) -> int:
    version = _store(args).promote(args.version, alias=args.alias)
    print(f"{args.alias} -> version {version.version}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    version = _store(args).rollback(alias=args.alias)
    print(f"{args.alias} -> version {version.version} (rolled back)")
    return 0
