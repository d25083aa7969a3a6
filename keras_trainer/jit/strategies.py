"""The five optimization strategies the JIT strategy model chooses between.

Each strategy is an LLVM new-pass-manager pipeline (`PassBuilder` built from
`PipelineTuningOptions`) plus a code-generation optimization level for the
target machine. They are listed cheapest first; their names, in this order,
are the model's `class_names`.

| index | name        | IR pipeline | vectorize (loop, SLP) | unroll | codegen |
|-------|-------------|-------------|-----------------------|--------|---------|
| 0     | O0          | O0          | no                    | no     | O0      |
| 1     | O1          | O1          | no                    | no     | O1      |
| 2     | O2          | O2          | yes, yes              | yes    | O2      |
| 3     | O3          | O3          | yes, yes              | yes    | O3      |
| 4     | O3-scalar   | O3          | no, no                | no     | O3      |

O0 is what a JIT would run first (it compiles fastest); O1 cleans up memory
traffic (SROA/mem2reg, simple CSE) without loop transformations; O2 and O3 are
the full pipelines with vectorization and unrolling (O3 adds more aggressive
inlining and loop passes); O3-scalar is O3 without vectorization and
unrolling, which wins where vector prologues/epilogues or code growth cost
more than they save (short trip counts, branchy loop bodies).

Example:

>>> [s.name for s in STRATEGIES]
['O0', 'O1', 'O2', 'O3', 'O3-scalar']
>>> module = optimize(parse_ir(ir_text), get_strategy("O3"))
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import llvmlite.binding as llvm

from keras_trainer.errors import ConfigError
from keras_trainer.jit.config import BUILT_IN_STRATEGY_NAMES, PIPELINE_FIELDS, check_pipeline
from keras_trainer.jit.llvm_ir.ir import initialize_llvm


@dataclasses.dataclass(frozen=True)
class Strategy:
    """One optimization strategy.

    Args:
        name: the class name the model predicts.
        speed_level: IR pipeline level for `create_pipeline_tuning_options` (0-3).
        loop_vectorization: run the loop vectorizer.
        slp_vectorization: run the SLP (straight-line) vectorizer.
        loop_unrolling: allow loop unrolling.
        codegen_level: the target machine's code generation level (0-3).
        description: one line for docs and the CLI.
        compile_rank: place in the compile-cost order (0 = cheapest); a
            label tie goes to the strategy with the lowest rank. `None`: not
            known (ties then follow the list order, see `tie_preference`).

    A strategy known only by its measured times (a user's own compiler
    setting, declared in a config by name alone) has `None` pipeline fields:
    it can be trained on and predicted, not compiled (`optimize` refuses it).
    """

    name: str
    speed_level: Optional[int]
    loop_vectorization: Optional[bool]
    slp_vectorization: Optional[bool]
    loop_unrolling: Optional[bool]
    codegen_level: Optional[int]
    description: str
    compile_rank: Optional[int] = 0

    @property
    def compilable(self) -> bool:
        """Whether the pipeline is known (False for a strategy known only by its times)."""
        return all(getattr(self, key) is not None for key in PIPELINE_FIELDS)

    def get_config(self) -> dict:
        """The strategy as a JSON-ready dict."""
        return dataclasses.asdict(self)


# compile_rank: the order of compile cost by pipeline content (O1's light
# cleanup < O3 without the vectorizers and the unroller < O2 < O3); measured
# median compile times on the C corpus agree within their noise.
STRATEGIES: tuple = (
    Strategy("O0", 0, False, False, False, 0, "no IR optimization, fastest compile", 0),
    Strategy(
        "O1",
        1,
        False,
        False,
        False,
        1,
        "light cleanup (SROA, CSE, simplifycfg), no loop transforms",
        1,
    ),
    Strategy("O2", 2, True, True, True, 2, "full pipeline with vectorization and unrolling", 3),
    Strategy(
        "O3", 3, True, True, True, 3, "aggressive pipeline with vectorization and unrolling", 4
    ),
    Strategy("O3-scalar", 3, False, False, False, 3, "O3 without vectorization and unrolling", 2),
)

STRATEGY_NAMES: list = [s.name for s in STRATEGIES]
assert tuple(STRATEGY_NAMES) == BUILT_IN_STRATEGY_NAMES


def get_strategy(name_or_index) -> Strategy:
    """Returns a strategy by name (`"O2"`) or class index (`2`).

    Raises:
        ConfigError: unknown name or index out of range.
    """
    if isinstance(name_or_index, Strategy):
        return name_or_index
    if isinstance(name_or_index, dict):
        return Strategy(**{"description": "", **name_or_index})
    if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
        if 0 <= name_or_index < len(STRATEGIES):
            return STRATEGIES[name_or_index]
        raise ConfigError(
            f"strategy index {name_or_index} is out of range 0..{len(STRATEGIES) - 1}"
        )
    for strategy in STRATEGIES:
        if strategy.name == name_or_index:
            return strategy
    raise ConfigError(f"unknown strategy {name_or_index!r}; choose one of {STRATEGY_NAMES}")


def tie_preference(strategies) -> list:
    """Strategy names in the order that wins a tie between measured times.

    Cheapest to compile first (by `compile_rank`, then list order) when every
    strategy has a rank; when any has none (a strategy known only by its
    times), the list order itself, as ranks cannot be compared with a
    missing one (see `missing_ranks`)."""
    chosen = [get_strategy(s) for s in strategies]
    if missing_ranks(chosen):
        return [s.name for s in chosen]
    order = sorted(range(len(chosen)), key=lambda i: (chosen[i].compile_rank, i))
    return [chosen[i].name for i in order]


def missing_ranks(strategies) -> list:
    """Names of the strategies without a `compile_rank`."""
    return [s.name for s in map(get_strategy, strategies) if s.compile_rank is None]


def strategies_from_config(specs) -> list:
    """`Strategy` objects for the config's strategy list (`jit.strategies`).

    A spec may name a built-in strategy and leave its pipeline fields null
    (they are taken from the built-in); a new name gives every pipeline field
    or none (a strategy known only by its measured times, which can be
    trained on but not compiled). A missing `compile_rank` is the built-in's,
    else `None`.

    Raises:
        ConfigError: a new strategy with some but not all pipeline fields.
    """
    result = []
    for index, spec in enumerate(specs):
        fields = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
        name = fields.pop("name")
        check_pipeline(name, fields, f"jit.strategies[{index}]")
        base = next((s for s in STRATEGIES if s.name == name), None)
        values = {}
        for key, value in fields.items():
            if value is None and base is not None:
                value = getattr(base, key)
            values[key] = value
        description = base.description if base is not None else "declared in the config"
        result.append(Strategy(name=name, description=description, **values))
    return result


def create_target_machine(strategy: Strategy) -> llvm.TargetMachine:
    """A target machine for the host CPU at the strategy's codegen level, set up for JIT."""
    initialize_llvm()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=strategy.codegen_level,
        jit=True,
    )


def optimize(module: llvm.ModuleRef, strategy, target_machine=None) -> llvm.ModuleRef:
    """Runs the strategy's IR pipeline on `module` in place (new pass manager).

    Args:
        module: a parsed, verified module.
        strategy: a `Strategy`, name or index.
        target_machine: reuse one from `create_target_machine`; made if `None`.

    Returns:
        The same module, optimized.
    """
    strategy = get_strategy(strategy)
    if not strategy.compilable:
        raise ConfigError(
            f"strategy {strategy.name!r} is known only by its measured times: its pipeline "
            f"({', '.join(PIPELINE_FIELDS)}) is not given, so it cannot be compiled"
        )
    target_machine = target_machine or create_target_machine(strategy)
    module.triple = target_machine.triple
    module.data_layout = str(target_machine.target_data)
    options = llvm.create_pipeline_tuning_options(speed_level=strategy.speed_level)
    options.loop_vectorization = strategy.loop_vectorization
    options.slp_vectorization = strategy.slp_vectorization
    options.loop_unrolling = strategy.loop_unrolling
    options.loop_interleaving = strategy.loop_vectorization
    builder = llvm.create_pass_builder(target_machine, options)
    builder.getModulePassManager().run(module, builder)
    return module
