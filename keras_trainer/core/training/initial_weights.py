"""A model's initial weights under another seed, without building the model again.

Keras layers draw their initializers' seeds from Python's `random` when they are
constructed (`keras.random.make_default_seed`: `random.randint(1, 10**9)`), and an
initializer seeded with an integer gives the same values every time it is called.
So after `set_seed(s)`, a model's initial weights are a function of the integers
drawn from `random.Random(s)`, in construction order. `InitialWeights.record`
builds a model once while noting the initializer that made each variable and which
draw its seed was; `values(seed)` calls those initializers again with the draws of
`random.Random(seed)`: the weights a build after `set_seed(seed)` would start from,
without Keras' layer construction and compiling (for the seed MLP on a 2-core CPU,
about 2 ms against 17 ms).

Recording refuses (returns no `InitialWeights`) what it cannot replay exactly: a
variable made from a concrete value or by a function that is not a Keras
initializer (a dropout layer's seed generator), an initializer seeded with a
`SeedGenerator`, or a build that draws from Python's `random` other than for
seeds. It notes draws and variables through Keras' internals
(`make_default_seed`, `keras.Variable.__init__`), patched while the model is
built; if Keras moves them, the draws no longer account for the random state and
recording refuses.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Optional

import keras
import numpy as np

from keras_trainer.core.training.seeding import set_seed

_SEED_RANGE = (1, int(1e9))  # keras.random.make_default_seed's range
_INHERITED = object()


@contextlib.contextmanager
def _recording(made: dict, draws: list) -> Iterator[None]:
    """Inside, each new `keras.Variable` is noted with its initializer in `made`, and each
    Keras seed draw in `draws` as (Python random state before, value, state after)."""
    try:
        from keras.src.backend import random as backend_random
        from keras.src.random import seed_generator
    except ImportError:  # Keras moved its internals: nothing is noted, so recording refuses
        yield
        return

    variable_class = keras.Variable
    original_init = variable_class.__init__
    original_seed = seed_generator.make_default_seed
    # The patches are process-wide; other threads (`fit_populations`' workers) pass through.
    recorder = threading.get_ident()

    def recording_init(variable, initializer, *args, **kwargs):
        original_init(variable, initializer, *args, **kwargs)
        if threading.get_ident() == recorder:
            made[id(variable)] = (variable, initializer)

    def recording_seed():
        if threading.get_ident() != recorder:
            return original_seed()
        before = random.getstate()
        value = original_seed()
        draws.append((before, value, random.getstate()))
        return value

    patched = [(variable_class, "__init__", recording_init)]
    patched += [(m, "make_default_seed", recording_seed) for m in (backend_random, seed_generator)]
    # What each object itself held (a class may inherit the attribute: then none).
    undo = [(obj, name, vars(obj).get(name, _INHERITED)) for obj, name, _ in patched]
    for obj, name, value in patched:
        setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, value in undo:
            if value is _INHERITED:
                delattr(obj, name)
            else:
                setattr(obj, name, value)


class InitialWeights:
    """The initializers of a model's variables and the seed draw each one used.

    Example:

    >>> model, initial = InitialWeights.record(1, lambda: build_model(ModelConfig(), (12,)))
    >>> values = initial.values(2)  # the initial weights of the build after set_seed(2)
    """

    def __init__(self, model: keras.Model, seed: int, sources: list, draws: int):
        self.model = model
        self.seed = seed
        # One per model variable: (initializer, draw index) for a drawn seed, or the
        # variable's initial value for one that is the same under every seed.
        self.sources = sources
        self.draws = draws

    @classmethod
    def record(
        cls, seed: int, build: Callable[[], keras.Model]
    ) -> tuple[keras.Model, Optional[InitialWeights]]:
        """Builds `build()` after `set_seed(seed)`; the model, and its `InitialWeights`
        or `None` where its initial weights cannot be replayed.

        `build` must create the model's variables (build it, not just construct it).
        """
        made: dict[int, tuple] = {}
        recorded_draws: list[tuple] = []
        set_seed(seed)
        state = random.getstate()
        with _recording(made, recorded_draws):
            model = build()
        # Replayable only if Python's random was used for seed draws alone: each draw
        # starts where the last one ended, and nothing was drawn after the last.
        for before, _, after in recorded_draws:
            if before != state:
                return model, None
            state = after
        draws = [value for _, value, _ in recorded_draws]
        if random.getstate() != state or len(set(draws)) != len(draws):
            return model, None
        position = {value: index for index, value in enumerate(draws)}
        sources: list[Any] = []
        for variable in model.variables:
            recorded = made.get(id(variable))
            if recorded is None or recorded[0] is not variable:
                return model, None
            initializer = recorded[1]
            if not isinstance(initializer, keras.initializers.Initializer):
                return model, None
            init_seed = getattr(initializer, "seed", None)
            if init_seed is None or getattr(initializer, "_init_seed", None) is not None:
                # Not random, or seeded by the builder: the same under every seed (what
                # the initializer gives, so that a value set after it is refused below).
                value = initializer(tuple(variable.shape), dtype=variable.dtype)
                sources.append(np.array(keras.ops.convert_to_numpy(value)))
            elif isinstance(init_seed, int) and init_seed in position:
                sources.append((initializer, position[init_seed]))
            else:
                return model, None
        initial = cls(model, seed, sources, len(draws))
        replayed = initial.values(seed)
        for variable, value in zip(model.variables, replayed):
            if not np.array_equal(value, keras.ops.convert_to_numpy(variable.value)):
                return model, None
        return model, initial

    def _draws(self, seed: int) -> list[int]:
        generator = random.Random(seed)
        return [generator.randint(*_SEED_RANGE) for _ in range(self.draws)]

    def values(self, seed: int) -> list[np.ndarray]:
        """The initial value of each of the model's variables (`model.variables` order)
        in a build after `set_seed(seed)`."""
        draws = self._draws(seed)
        out = []
        for variable, source in zip(self.model.variables, self.sources):
            if isinstance(source, np.ndarray):
                out.append(source)
            else:
                initializer, index = source
                value = _reseeded(initializer, draws[index])(tuple(variable.shape), variable.dtype)
                out.append(np.asarray(keras.ops.convert_to_numpy(value)))
        return out

    def stacked_values(self, seeds: Sequence[int]) -> list[np.ndarray]:
        """`values(seed)` for each of `seeds`, stacked along a new first axis.

        The initializers run on the default device, where builds run: a GPU's XLA may
        round them differently from the CPU's (fused multiply-adds), and the replay is
        only worth having while it equals a build bit for bit. Callers that need that
        check a row against a build.
        """
        per_seed = [self.values(seed) for seed in seeds]
        return [np.stack(column) for column in zip(*per_seed)]


def _reseeded(initializer: keras.initializers.Initializer, seed: int):
    return type(initializer).from_config(dict(initializer.get_config(), seed=seed))
