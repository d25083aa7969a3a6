"""Tiering policies: when a JIT recompiles a function, and with which strategy.

One interface serves the replay of measured workloads (`keras_trainer.jit.tiering.workload.replay`)
and the live `AdaptiveJIT`: a `Policy` is fitted once on training data (`fit`) and
hands out a `Controller` per function. The controller names the first build
(`first_level`), the call count of its next checkpoint (`next_checkpoint`), and at
each checkpoint what to do (`decide`): nothing, `("compile", [strategy])` (build it
if needed and switch to it), or `("autotune", [strategies])` (build each, time it on
one real call, keep the fastest). docs/jit.md, "Tiering policies", says where each
policy comes from.

| name | what it does |
| --- | --- |
| `always:S` | compiles strategy S once, before the first call |
| `tiered` | O0 first, then strategy L after K calls; K and L fitted on training data |
| `cost_benefit` | the Jikes RVM adaptive optimization system's model, constant per-strategy speed-ups |
| `cost_benefit+model` | the same with per-function speed-ups and compile costs from a cost model |
| `autotune` | O0 until the function's past time exceeds `budget` x the compile cost of the candidates, then times them all |
| `recommended` | `cost_benefit` for warm code plus `autotune` for hot code (the `AdaptiveJIT` default) |

Example:

>>> policy = get_policy("cost_benefit").fit(training_workload)
>>> replay(test_workload, policy).total_s
"""

from __future__ import annotations

import abc
import math
import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from keras_trainer.errors import ConfigError

#: Checkpoints at calls 1, 2, 4, 8, ...: exponentially spaced, as Jikes RVM's timer samples
#: grow with a method's run time.
CHECKPOINT_GROWTH = 2.0
#: Past-time multiples of the candidates' compile cost tried when fitting `budget`.
BUDGET_GRID = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, math.inf)
#: Future-calls-per-past-call multiples tried when fitting `recommended`'s horizon.
HORIZON_GRID = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
POLICY_NAMES = (
    "always:<strategy>",
    "tiered",
    "cost_benefit",
    "cost_benefit+model",
    "autotune",
    "recommended",
)

Action = Optional[tuple]


class Controller(abc.ABC):
    """Decides for one function; made by `Policy.controller`."""

    @abc.abstractmethod
    def first_level(self) -> str:
        """The strategy compiled before the function's first call."""

    def next_checkpoint(self, state) -> float:
        """The call count at which `decide` is asked next (`math.inf`: never)."""
        return math.inf

    def decide(self, state) -> Action:
        return None


class Policy(abc.ABC):
    """A tiering policy; `fit` learns its parameters, `controller` decides per function."""

    name = "policy"

    def fit(self, workload) -> Policy:
        """Fits the parameters on a training workload; returns `self`."""
        return self

    def prepare(self, workload) -> None:
        """Called by `replay` before the functions: batch work (model predictions)."""
        return  # most policies decide per function and have nothing to batch

    @abc.abstractmethod
    def controller(self, sample: dict, strategies: Sequence[str]) -> Controller:
        """A new controller deciding for the function `sample` among `strategies`."""

    def describe(self) -> dict:
        """The fitted parameters, for reports."""
        return {}


class _Fixed(Controller):
    def __init__(self, level: str):
        self.level = level

    def first_level(self) -> str:
        return self.level


class AlwaysPolicy(Policy):
    """Compiles every function once with `strategy`, before its first call."""

    def __init__(self, strategy: str):
        self.strategy = strategy
        self.name = f"always:{strategy}"

    def controller(self, sample, strategies) -> Controller:
        if self.strategy not in strategies:
            raise ConfigError(
                f"policy {self.name!r}: no strategy {self.strategy!r} in {list(strategies)}"
            )
        return _Fixed(self.strategy)


class _Tiered(Controller):
    def __init__(self, base: str, threshold: float, level: str):
        self.base, self.threshold, self.level = base, threshold, level

    def first_level(self) -> str:
        return self.base

    def next_checkpoint(self, state) -> float:
        return self.threshold if state.level == self.base else math.inf

    def decide(self, state) -> Action:
        return ("compile", [self.level])


class TieredPolicy(Policy):
    """O0 first, then `level` once a function has run `threshold` calls.

    Args:
        threshold: K, the call count that triggers the recompile; `None` until fitted.
        level: L, the strategy compiled then.

    `fit` picks K (powers of two) and L with the least training total, in hindsight
    on the training workload: the best fixed two-tier rule for that kind of workload.
    """

    name = "tiered"

    def __init__(self, threshold: Optional[float] = None, level: Optional[str] = None):
        self.threshold, self.level = threshold, level

    def fit(self, workload) -> TieredPolicy:
        t, c, n = workload.call_s, workload.compile_s, workload.calls.astype(np.float64)
        best = (math.inf, None, None)
        for power in range(0, 64):
            k = 2.0**power
            first = c[:, 0] + np.minimum(n, k) * t[:, 0]
            later = n > k
            for j in range(1, t.shape[1]):
                total = float((first + later * (c[:, j] + np.maximum(n - k, 0) * t[:, j])).sum())
                if total < best[0]:
                    best = (total, k, workload.strategies[j])
            if k >= n.max():
                break
        _, self.threshold, self.level = best
        return self

    def controller(self, sample, strategies) -> Controller:
        if self.threshold is None:
            raise ConfigError(
                "policy 'tiered': call fit(training_workload) first, or pass threshold and level"
            )
        return _Tiered(strategies[0], self.threshold, self.level)

    def describe(self) -> dict:
        return {"threshold_calls": self.threshold, "level": self.level}


def constant_estimates(workload) -> tuple[dict, dict]:
    """Per-strategy speed-up over the first strategy (O0) and compile-cost ratio to it:
    geometric means over the workload's functions (Jikes RVM's offline constants)."""
    speedup = np.exp(np.log(workload.call_s[:, :1] / workload.call_s).mean(axis=0))
    ratio = np.exp(np.log(workload.compile_s / workload.compile_s[:, :1]).mean(axis=0))
    names = workload.strategies
    return dict(zip(names, speedup.tolist())), dict(zip(names, ratio.tolist()))


class _CostBenefit(Controller):
    """Jikes RVM's model at checkpoints 1, 2, 4, ... calls: future calls = past calls;
    switch to the strategy j minimizing compile(j) + future x time(j) when that beats
    staying; time(j) is measured where j ran, else estimated from the speed-ups."""

    def __init__(
        self,
        base: str,
        speedup: Optional[dict],
        ratio: dict,
        budget: Optional[float] = None,
        candidates: Optional[list] = None,
        horizon: float = 1.0,
    ):
        self.base, self.speedup, self.ratio = base, speedup, ratio
        self.budget, self.candidates = budget, candidates
        self.horizon = horizon

    def first_level(self) -> str:
        return self.base

    def next_checkpoint(self, state) -> float:
        if state.autotuned:
            return math.inf
        return max(1.0, state.calls * CHECKPOINT_GROWTH)

    def _compile_s(self, name: str, state) -> float:
        if name in state.compiled_s:
            return 0.0
        # The first build's measured compile time scales the constant ratios (to O0).
        return self.ratio[name] / self.ratio[self.base] * state.compiled_s[self.base]

    def decide(self, state) -> Action:
        if self.budget is not None:
            untimed = [s for s in self.candidates if s not in state.measured_call_s]
            if untimed and state.run_s >= self.budget * sum(
                self._compile_s(s, state) for s in untimed
            ):
                return ("autotune", untimed)
            if self.speedup is None:
                return None
        level, measured, compiled = state.level, state.measured_call_s, state.compiled_s
        current = measured[level]
        future = state.calls * self.horizon  # future = past (x horizon)
        best, best_cost = level, future * current
        reference = current * self.speedup[level]  # the O0 time per call it implies
        unit_compile = compiled[self.base] / self.ratio[self.base]
        horizon_s = future * current  # the time the function is expected to run on
        for name, speedup in self.speedup.items():
            if name == level:
                continue
            per_call = measured[name] if name in measured else reference / speedup
            if name not in measured:
                # A strategy expected to help no more than one measured already is
                # assumed no faster than it: where O3 did not beat O1, O2 will not
                # either (without this rule the constants send a function that no
                # optimization helps through every level, each compile wasted).
                per_call = max(
                    [per_call]
                    + [t for m, t in measured.items() if self.speedup.get(m, 0.0) >= speedup]
                )
            compile_s = 0.0 if name in compiled else self.ratio[name] * unit_compile
            if state.background and compile_s > 0.0:
                # Compiled on the other thread: the calls go on at the current build
                # for compile_s, then the rest run on the new one; a build that would
                # be ready only after the expected end is not worth starting.
                if compile_s >= horizon_s:
                    continue
                cost = compile_s + (future - compile_s / current) * per_call
            else:
                cost = compile_s + future * per_call
            if cost < best_cost:
                best, best_cost = name, cost
        return None if best == level else ("compile", [best])


class CostBenefitPolicy(Policy):
    """The Jikes RVM adaptive optimization system's cost-benefit model.

    Arnold, Fink, Grove, Hind, Sweeney, "Adaptive optimization in the Jalapeño JVM",
    OOPSLA 2000: at each checkpoint assume the function runs as long again as it has
    (future = past) and recompile at the level j that minimizes compile(j) + future
    time at j, if that beats staying. Speed-ups over O0 and compile-cost ratios to
    O0 are constants per strategy (geometric means over the training functions);
    a function's compile cost is its measured O0 compile time x the ratio.

    Args:
        speedup: strategy -> speed-up over O0; `None` until fitted.
        ratio: strategy -> compile time / O0 compile time.
    """

    name = "cost_benefit"

    def __init__(self, speedup: Optional[dict] = None, ratio: Optional[dict] = None):
        self.speedup, self.ratio = speedup, ratio

    def fit(self, workload) -> CostBenefitPolicy:
        self.speedup, self.ratio = constant_estimates(workload)
        return self

    def _require_fit(self):
        if self.speedup is None:
            raise ConfigError(f"policy {self.name!r}: call fit(training_workload) first")

    def controller(self, sample, strategies) -> Controller:
        self._require_fit()
        return _CostBenefit(strategies[0], self.speedup, self.ratio)

    def describe(self) -> dict:
        return {"speedup": self.speedup, "compile_ratio": self.ratio}


class AutotunePolicy(CostBenefitPolicy):
    """Measures instead of predicting: O0 until a function's past run time exceeds
    `budget` x the estimated cost of compiling the candidates, then compiles every
    candidate, times each on one real call and keeps the fastest.

    Args:
        budget: the past-time multiple of the candidates' compile cost; `None`
            fits it on the training workload from `BUDGET_GRID`.
        candidates: the strategies tried (default: every strategy but O0).
        cost_benefit: also apply the cost-benefit rule before the code is hot
            (this is `recommended`).
        speedup, ratio: the cost-benefit constants (`None`: fitted, see
            `CostBenefitPolicy`); `ratio` also estimates the candidates' compile cost.
        first: the first build (`None`: O0, or fitted when `cost_benefit`).
        horizon: future calls per past call assumed by the cost-benefit rule
            (fitted from `HORIZON_GRID` when `cost_benefit` and `first` is `None`).
        background: fit for a JIT that recompiles on a background thread (`fit`
            replays with `replay(background=True)`).
    """

    name = "autotune"

    def __init__(
        self,
        budget: Optional[float] = None,
        candidates: Optional[Sequence[str]] = None,
        cost_benefit: bool = False,
        speedup: Optional[dict] = None,
        ratio: Optional[dict] = None,
        first: Optional[str] = None,
        horizon: float = 1.0,
        background: bool = False,
    ):
        super().__init__(speedup, ratio)
        self.horizon, self.background = horizon, bool(background)
        self.budget, self.candidates, self.cost_benefit = budget, candidates, cost_benefit
        self.first = first
        self.fit_budget, self.fit_first = budget is None, first is None and cost_benefit

    def fit(self, workload) -> AutotunePolicy:
        super().fit(workload)
        if self.fit_first:  # the first build and the horizon, by the cost-benefit rule alone
            budget, self.budget, self.horizon = self.budget, math.inf, 1.0
            self.first = self._best(workload, "first", workload.strategies)
            self.horizon = self._best(workload, "horizon", HORIZON_GRID)
            self.budget = budget
        if self.fit_budget:
            self.budget = self._best(workload, "budget", BUDGET_GRID)
        return self

    def _best(self, workload, attribute: str, values: Sequence) -> Any:
        """The value of `attribute` with the least replayed total on `workload`."""
        from keras_trainer.jit.tiering.workload import replay

        totals = {}
        for value in values:
            setattr(self, attribute, value)
            totals[value] = replay(workload, self, background=self.background).total_s
        return min(totals, key=totals.get)

    def controller(self, sample, strategies) -> Controller:
        self._require_fit()
        if self.budget is None:
            raise ConfigError(
                f"policy {self.name!r}: call fit(training_workload) first, or pass budget"
            )
        first = self.first or strategies[0]
        candidates = [s for s in (self.candidates or strategies) if s != first]
        return _CostBenefit(
            first,
            self.speedup if self.cost_benefit else None,
            self.ratio,
            self.budget,
            candidates,
            self.horizon,
        )

    def describe(self) -> dict:
        return {
            **super().describe(),
            "first": self.first,
            "horizon": self.horizon,
            "budget": self.budget,
            "candidates": self.candidates,
            "background": self.background,
        }


def recommended_policy(**kwargs) -> AutotunePolicy:
    """`recommended`: cost-benefit tiering for warm code, autotuning for hot code."""
    policy = AutotunePolicy(cost_benefit=True, **kwargs)
    policy.name = "recommended"
    return policy


#: `recommended` as fitted on the bundled C-kernel corpus (1,620 kernels, calls
#: runtime:0.01:100, seed 0: `recommended_policy().fit(workload).describe()`), rounded.
SHIPPED_RECOMMENDED = {
    "speedup": {"O0": 1.0, "O1": 2.006, "O2": 2.747, "O3": 2.868, "O3-scalar": 2.001},
    "ratio": {"O0": 1.0, "O1": 3.168, "O2": 5.070, "O3": 5.329, "O3-scalar": 2.987},
    "first": "O1",
    "horizon": 4.0,
    "budget": 20.0,
}
#: `recommended` for a JIT that recompiles on a background thread: the same constants;
#: first build, horizon and budget with the least geometric mean regret over
#: runtime:0.01:100, runtime:0.001:10, runtime:0.0001:1 and zipf:1.1:100000 (seed 0),
#: replayed with `background=True` on the whole corpus (in sample; docs/benchmarks.md).
#: A recompile that costs no wall time makes the cheapest first build the best.
SHIPPED_RECOMMENDED_BACKGROUND = {
    **SHIPPED_RECOMMENDED,
    "first": "O0",
    "horizon": 4.0,
    "budget": 10.0,
    "background": True,
}


def shipped_policy(name: str, model: Any = None, background: bool = False) -> Policy:
    """A policy ready to decide without training data: `recommended` and `cost_benefit`
    with the parameters fitted on the bundled corpus, `always:S`, or `cost_benefit+model`.
    `background`: `recommended`'s parameters for a JIT that recompiles on a background
    thread (`SHIPPED_RECOMMENDED_BACKGROUND`).

    Raises:
        ConfigError: an unknown name, or `tiered`/`autotune` (fit them on your workload).
    """
    if name == "recommended":
        return recommended_policy(
            **(SHIPPED_RECOMMENDED_BACKGROUND if background else SHIPPED_RECOMMENDED)
        )
    if name == "cost_benefit":
        return CostBenefitPolicy(SHIPPED_RECOMMENDED["speedup"], SHIPPED_RECOMMENDED["ratio"])
    if name in ("tiered", "autotune"):
        raise ConfigError(
            f"policy {name!r} has no shipped parameters: fit it on a workload "
            f"(get_policy({name!r}).fit(workload)) and pass the fitted policy"
        )
    return get_policy(name, model=model)


def get_policy(name: str, model: Any = None) -> Policy:
    """A policy by name (`always:O3`, `tiered`, `cost_benefit`, `cost_benefit+model`,
    `autotune`, `recommended`); `model` is the cost model `cost_benefit+model` needs.

    Raises:
        ConfigError: an unknown name, or `cost_benefit+model` without a model.
    """
    if not isinstance(name, str):
        raise ConfigError(f"policy: expected a name, got {type(name).__name__}")
    if name.startswith("always:") and len(name) > len("always:"):
        return AlwaysPolicy(name[len("always:") :])
    if name == "tiered":
        return TieredPolicy()
    if name == "cost_benefit":
        return CostBenefitPolicy()
    if name == "autotune":
        return AutotunePolicy()
    if name == "recommended":
        return recommended_policy()
    if name == "cost_benefit+model":
        if model is None:
            raise ConfigError("policy 'cost_benefit+model' needs a cost model: pass --model MODEL")
        return ModelCostBenefitPolicy(model)
    raise ConfigError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")


#: The exploration budget of a recording `AdaptiveJIT` (`explore_budget`): a function whose
#: past run time reaches 50 x the predicted compile cost of its untimed strategies has
#: them built and timed once. Chosen among 2, 5, 20, 50 and 100 on the leave-family-out
#: replay of `benchmarks/jit_online.py` (docs/benchmarks.md): 20 and below cost more
#: than they teach on runtime:0.001:10.
EXPLORE_BUDGET = 50.0


def check_explore(explore: Optional[float]) -> Optional[float]:
    """`explore` as a float budget (`None` or `math.inf`: no exploration), or `ConfigError`."""
    if explore is None:
        return None
    if isinstance(explore, bool) or not isinstance(explore, (int, float)) or not explore > 0:
        raise ConfigError(
            f"explore: a budget > 0 (past run time / compile cost of the untimed strategies) "
            f"or None, got {explore!r}"
        )
    return None if math.isinf(explore) else float(explore)


class ModelCostBenefitPolicy(Policy):
    """`cost_benefit+model`: the Jikes RVM cost-benefit rule with each function's
    speed-ups and compile-cost ratios predicted by a `CostModel` from its features
    after the O0 probe (the first build is O0, whose run gives the runtime metrics).

    Args:
        model: a trained `keras_trainer.jit.model.cost_model.CostModel` (`CostModel.load(path)`
            reads a saved one).
        explore: bounded exploration, for a JIT that learns from its own records
            (`AdaptiveJIT(record_to=, explore_budget=)`): once a function's past run
            time reaches `explore` x the predicted compile cost of the strategies it
            has not timed, they are built and each timed on real calls (autotune's
            rule; the builds and the calls are paid like any other), and the fastest
            is kept. Its record then measures every strategy, not only those the
            model chose (records of chosen builds only are biased: docs/jit.md,
            "Learning from its own measurements"). `None` (default): no exploration.
    """

    name = "cost_benefit+model"

    def __init__(self, model: Any, explore: Optional[float] = None):
        if isinstance(model, (str, os.PathLike)):
            raise ConfigError(
                "policy 'cost_benefit+model': pass a loaded cost model "
                f"(keras_trainer.jit.model.cost_model.CostModel.load({str(model)!r})), not a path"
            )
        self.model = model
        self.explore = check_explore(explore)
        self._predicted: dict = {}

    def describe(self) -> dict:
        return {"explore": self.explore}

    def prepare(self, workload) -> None:
        """Predicts every function of `workload` in one batch."""
        self._predicted = {}
        speedup, ratio = self.model.predict_samples(workload.samples)
        names = self.model.strategies
        for i, sample in enumerate(workload.samples):
            self._predicted[id(sample)] = (
                dict(zip(names, speedup[i].tolist())),
                dict(zip(names, ratio[i].tolist())),
            )

    def controller(self, sample: dict, strategies: Sequence[str]) -> Controller:
        if list(strategies) != self.model.strategies:
            raise ConfigError(
                f"policy 'cost_benefit+model': the model predicts {self.model.strategies}, "
                f"the workload has {list(strategies)}"
            )
        if id(sample) not in self._predicted:
            speedup, ratio = self.model.predict_samples([sample])
            self._predicted[id(sample)] = (
                dict(zip(strategies, speedup[0].tolist())),
                dict(zip(strategies, ratio[0].tolist())),
            )
        speedup, ratio = self._predicted[id(sample)]
        if self.explore is None:
            return _CostBenefit(strategies[0], speedup, ratio)
        return _CostBenefit(strategies[0], speedup, ratio, self.explore, list(strategies[1:]))


def policy_spec(policy: Policy) -> dict:
    """A fitted model-free policy as plain JSON (`policy_from_spec` rebuilds it), to
    decide inside the sandboxed worker (`AdaptiveJIT.run`).

    Raises:
        ConfigError: `cost_benefit+model` (its model stays in the caller's process).
    """
    if isinstance(policy, AlwaysPolicy):
        return {"kind": "always", "strategy": policy.strategy}
    if isinstance(policy, TieredPolicy):
        return {"kind": "tiered", "threshold": policy.threshold, "level": policy.level}
    if isinstance(policy, AutotunePolicy):
        fields = (
            "budget",
            "candidates",
            "cost_benefit",
            "speedup",
            "ratio",
            "first",
            "horizon",
            "background",
        )
        return {"kind": "autotune", "name": policy.name, **{k: getattr(policy, k) for k in fields}}
    if isinstance(policy, CostBenefitPolicy):
        return {"kind": "cost_benefit", "speedup": policy.speedup, "ratio": policy.ratio}
    raise ConfigError(
        f"policy {policy.name!r} cannot decide in the sandboxed worker (it consults a model in "
        "this process); use a trusted JIT or a model-free policy"
    )


def policy_from_spec(spec: dict) -> Policy:
    """The policy that `policy_spec` wrote."""
    kind = spec.get("kind")
    if kind == "always":
        return AlwaysPolicy(spec["strategy"])
    if kind == "tiered":
        return TieredPolicy(spec["threshold"], spec["level"])
    if kind == "cost_benefit":
        return CostBenefitPolicy(spec["speedup"], spec["ratio"])
    if kind == "autotune":
        fields = {k: v for k, v in spec.items() if k not in ("kind", "name")}
        if fields["budget"] is None:
            raise ConfigError("policy spec: an autotune policy needs its fitted budget")
        policy = AutotunePolicy(**fields)
        policy.name = spec.get("name", policy.name)
        return policy
    raise ConfigError(f"policy spec: unknown kind {kind!r}")
