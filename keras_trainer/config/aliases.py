"""Other names for config keys: the design documents' spellings, each mapped to ours.

A config section lists its aliases in a class attribute `aliases` (a tuple of
`Alias`); `fields.from_dict` rewrites them before it validates, and the JSON Schema
and `docs/config.md` show each as "alias of" the key it stands for. This module is
the one table of them; `docs/design-names.md` maps the documents' Python names too.

Example:

>>> from keras_trainer.config.schema import TrainingConfig
>>> apply_aliases(TrainingConfig, {"use_mixed_precision": True}, "training")
{'mixed_precision': 'float16'}
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from keras_trainer.errors import ConfigError

#: The documents, as the alias table and `docs/design-names.md` name them.
TRAINING_FRAMEWORK = "training-framework document"
ML_FRAMEWORK = "ML-framework document"


@dataclasses.dataclass(frozen=True)
class Alias:
    """One other name for a config key.

    Args:
        name: The key as the document writes it.
        target: Our key it stands for, dotted from the section (`"lr_schedule.name"`).
        values: The document's spellings of values, mapped to ours; values not
            listed pass through unchanged and are validated as the target's.
        strict: Only the listed values are accepted (e.g. true/false for a flag that
            becomes a choice).
        shorthand: `name` is also a key of the section (an object); only a value
            that is not an object is the alias (`"optimizer": "adamw"`).
        document: Which document uses the name.
    """

    name: str
    target: str
    values: tuple[tuple[Any, Any], ...] = ()
    strict: bool = False
    shorthand: bool = False
    document: str = TRAINING_FRAMEWORK

    def convert(self, value: Any, path: str) -> Any:
        """Returns our value for the document's `value`."""
        for theirs, ours in self.values:
            if value == theirs and type(value) is type(theirs):
                return ours
        if self.strict:
            choices = ", ".join(json.dumps(theirs) for theirs, _ in self.values)
            raise ConfigError(
                f"{path}: must be one of {choices} (alias of {self.target}), got {value!r}"
            )
        return value

    def note(self) -> str:
        """One sentence for the docs: what the alias stands for, value by value."""
        mapped = ", ".join(f"{json.dumps(t)} = {json.dumps(o)}" for t, o in self.values)
        if self.shorthand and "." in self.target:
            return f"Also takes a string (the {self.document}'s form), alias of `{self.target}`: {mapped}."
        if self.shorthand:
            return f"Also takes the {self.document}'s values: {mapped}."
        return f"the {self.document}'s name" + (f"; {mapped}" if mapped else "")


_OPTIMIZERS = (("Adam", "adam"), ("AdamW", "adamw"), ("SGD", "sgd"), ("RMSprop", "rmsprop"))

#: `training` keys of the training-framework document's `TrainingConfig`.
TRAINING_ALIASES = (
    Alias(
        "use_mixed_precision",
        "mixed_precision",
        values=((True, "float16"), (False, "off")),
        strict=True,
    ),
    Alias("gradient_clip_val", "gradient_clip_norm"),
    Alias("scheduler", "lr_schedule.name", values=(("plateau", "reduce_on_plateau"),)),
    Alias("warmup_steps", "lr_schedule.warmup_steps"),
    Alias(
        "loss_function",
        "loss",
        values=(
            ("CrossEntropyLoss", "sparse_categorical_crossentropy"),
            ("FocalLoss", "focal"),
            ("MSELoss", "mse"),
            ("L1Loss", "mae"),
        ),
    ),
    Alias("save_best_only", "checkpoint.save_best_only"),
    Alias("max_checkpoints", "checkpoint.max_checkpoints"),
    Alias("tensorboard", "logging.tensorboard"),
    Alias("wandb", "logging.wandb"),
    Alias("log_dir", "logging.directory"),
    Alias("device", "device", values=(("cuda", "gpu"),), shorthand=True),
    Alias("optimizer", "optimizer.name", values=_OPTIMIZERS, shorthand=True),
)

#: `model` keys of the ML-framework document's `ModelConfig` (the tabular family's
#: `TabularModelConfig` takes these names as they are).
MODEL_ALIASES = tuple(
    Alias(theirs, ours, values=values, document=ML_FRAMEWORK)
    for theirs, ours, values in (
        (
            "architecture_type",
            "type",
            (
                ("FEED_FORWARD", "feed_forward"),
                ("LSTM", "lstm"),
                ("HYBRID", "cnn_lstm"),
                ("CNN_LSTM", "cnn_lstm"),
                ("hybrid", "cnn_lstm"),
            ),
        ),
        ("input_size", "input_dim", ()),
        ("hidden_sizes", "hidden_layers", ()),
        ("output_size", "output_dim", ()),
        ("dropout_rate", "dropout", ()),
        ("use_batch_norm", "batch_norm", ()),
        ("weight_init", "kernel_initializer", (("xavier", "glorot_uniform"),)),
    )
)


def _is_alias_use(alias: Alias, data: dict) -> bool:
    if alias.name not in data:
        return False
    if alias.shorthand and alias.target.split(".")[0] == alias.name:
        return not isinstance(data[alias.name], dict)  # the object form is ours
    return True


def apply_aliases(cls: type, data: Any, path: str = "") -> Any:
    """Rewrites the aliases of section `cls` in `data` into the keys they stand for.

    Args:
        cls: A config section with an `aliases` tuple (none: `data` is returned).
        data: The user's dict for that section.
        path: The section's key path, for messages.

    Returns:
        A new dict with our keys (or `data` itself when it has no alias).

    Raises:
        ConfigError: an alias given together with the key it stands for, or a
            value a strict alias does not take.
    """
    if not isinstance(data, dict):
        return data
    used = [alias for alias in getattr(cls, "aliases", ()) if _is_alias_use(alias, data)]
    if not used:
        return data
    data = dict(data)
    for alias in used:
        where = f"{path}.{alias.name}" if path else alias.name
        target = f"{path}.{alias.target}" if path else alias.target
        value = alias.convert(data.pop(alias.name), where)
        *parents, key = alias.target.split(".")
        node = data
        for parent in parents:
            child = node.get(parent, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{where}: alias of {target}, but {parent} is {child!r}")
            node[parent] = node = dict(child)
        if key in node and node[key] != value:
            raise ConfigError(
                f"{where}: alias of {target}, which is also set to {node[key]!r}; keep one"
            )
        node[key] = value
    return data


def alias_schema(alias: Alias, target_schema: dict) -> dict:
    """The JSON Schema property of an alias: the target's type, the document's values.

    `target_schema` is the target key's property (`{}` if this section lacks it).
    """
    schema = {k: v for k, v in target_schema.items() if k not in ("default", "description")}
    if alias.strict:
        schema = {"enum": [theirs for theirs, _ in alias.values]}
    elif "enum" in schema and alias.values:
        schema["enum"] = list(schema["enum"]) + [theirs for theirs, _ in alias.values]
    schema["description"] = f"Alias of `{alias.target}`: {alias.note()}."
    schema["x-alias-of"] = alias.target
    return schema
