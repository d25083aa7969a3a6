"""Registries: how the general code reaches model families without importing them.

Three registries map a name to an object a family provides:

- `MODEL_TYPES`: `model.type` in a config -> `builder(model_config, input_shape,
  dtype_policy) -> keras.Model`.
- `TASKS`: the `task` field of a saved file's metadata -> `loader(path)` that loads it.
- `CLI_COMMANDS`: a family name -> `register(subparsers)`, which adds that family's
  verbs to the `keras-trainer` command line.
- `FAMILY_VERBS`: `"<verb>:<family>"` (`"train:tabular"`, `"predict:assistant"`) ->
  `handler(args) -> int`: the family's part of the shared `train`, `evaluate` and
  `predict` verbs (`keras_trainer.cli_verbs` picks the family).
- `CONFIG_FILES`: a config-file kind -> its `ConfigSection` class (`keras-trainer
  validate --kind jit`, the JSON Schemas and `docs/config.md`).

An entry is either an object (`register`) or a lazy target string
`"package.module:attribute"` (`register_lazy`) imported the first time the name is
looked up. The built-in families are declared lazily below, so importing this module,
the config or the core imports no family, and nothing is imported for its side effect.

Example:

>>> from keras_trainer.registry import MODEL_TYPES
>>> @MODEL_TYPES.register("tiny")
... def build_tiny(config, input_shape, dtype_policy="float32"):
...     ...
>>> "tiny" in MODEL_TYPES
True
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any, Generic, Optional, TypeVar

from keras_trainer.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names mapped to objects, or to `"module:attribute"` targets imported on first use.

    Args:
        kind: What the names are, for messages ("model type", "task").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._objects: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str, obj: Optional[T] = None) -> Any:
        """Registers `obj` as `name`; without `obj`, returns a decorator that does.

        A later registration of the same name replaces the earlier one.
        """

        def add(value: T) -> T:
            self._objects[name] = value
            self._lazy.pop(name, None)
            return value

        return add if obj is None else add(obj)

    def register_lazy(self, name: str, target: str) -> None:
        """Registers `name` as `target` ("package.module:attribute"), imported on first `get`."""
        if target.count(":") != 1:
            raise ConfigError(
                f"{self.kind} {name!r}: target must be 'module:attribute', got {target!r}"
            )
        self._objects.pop(name, None)
        self._lazy[name] = target

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(set(self._objects) | set(self._lazy))

    def __contains__(self, name: object) -> bool:
        return name in self._objects or name in self._lazy

    def get(self, name: str, path: str = "") -> T:
        """Returns the object registered as `name`, importing a lazy target once.

        Args:
            name: The registered name.
            path: Config key path or context for the message ("model.type").

        Raises:
            ConfigError: `name` is not registered (the message lists those that are).
        """
        if name in self._objects:
            return self._objects[name]
        target = self._lazy.get(name)
        if target is None:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            prefix = f"{path}: " if path else ""
            raise ConfigError(
                f"{prefix}unknown {self.kind} {name!r}{hint} "
                f"(registered: {', '.join(self.names())})"
            )
        module_name, attribute = target.split(":")
        value = getattr(importlib.import_module(module_name), attribute)
        self._objects[name] = value
        del self._lazy[name]
        return value


def lazy_exports(namespace: dict[str, Any], exports: dict[str, str]):
    """`(__getattr__, __dir__)` for a package whose public names are imported on first use.

    Keeps `import keras_trainer.<package>` cheap (no Keras for `keras-trainer --help`).

    Example:

    >>> __getattr__, __dir__ = lazy_exports(globals(), {"fit": "keras_trainer.core.training.fit"})
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return list(namespace.get("__all__", exports))

    return __getattr__, __dir__


MODEL_TYPES: Registry[Callable[..., Any]] = Registry("model type")
TASKS: Registry[Callable[..., Any]] = Registry("task")
CLI_COMMANDS: Registry[Callable[..., None]] = Registry("CLI family")
FAMILY_VERBS: Registry[Callable[..., int]] = Registry("family verb")
CONFIG_FILES: Registry[type] = Registry("config kind")

# The built-in families, declared once. A new family adds its lines here (or calls
# `register` from its own code); see docs/architecture.md.
for _name, _target in {
    "mlp": "keras_trainer.core.building.models:build_mlp",
    "feed_forward": "keras_trainer.tabular.builders:build_feed_forward",
    "lstm": "keras_trainer.tabular.builders:build_lstm",
    "cnn_lstm": "keras_trainer.tabular.builders:build_cnn_lstm",
}.items():
    MODEL_TYPES.register_lazy(_name, _target)

for _name, _target in {
    "jit_strategy": "keras_trainer.jit.model.trainer:load_jit_model",
    "tabular": "keras_trainer.tabular.normalization:load_tabular_model",
    "assistant": "keras_trainer.assistant.assistant:load_assistant",
}.items():
    TASKS.register_lazy(_name, _target)

for _name, _target in {
    "jit": "keras_trainer.jit.cli:register",
    "tuning": "keras_trainer.tuning.cli:register",
    "export": "keras_trainer.export.cli:register",
    "assistant": "keras_trainer.assistant.cli:register",
    "serving": "keras_trainer.serving.cli:register",
    "models": "keras_trainer.export.store_cli:register",
    "tables": "keras_trainer.tabular.inspect_cli:register",
}.items():
    CLI_COMMANDS.register_lazy(_name, _target)

for _family in ("jit", "tabular", "assistant"):
    for _verb in ("train", "evaluate", "predict"):
        FAMILY_VERBS.register_lazy(f"{_verb}:{_family}", f"keras_trainer.{_family}.cli:{_verb}")

for _name, _target in {
    "trainer": "keras_trainer.config.schema:TrainerConfig",
    "jit": "keras_trainer.jit.config:JITConfig",
    "assistant": "keras_trainer.assistant.config:AssistantConfig",
    "serving": "keras_trainer.serving.config:ServingConfig",
}.items():
    CONFIG_FILES.register_lazy(_name, _target)

__all__ = [
    "CLI_COMMANDS",
    "CONFIG_FILES",
    "FAMILY_VERBS",
    "MODEL_TYPES",
    "TASKS",
    "Registry",
    "lazy_exports",
]
