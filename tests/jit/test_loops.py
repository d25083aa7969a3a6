"""`_loop_depths` (retreating edges + reachability) equals dominator-set natural loops."""

import random

import pytest

from keras_trainer.jit.llvm_ir.ir_analysis import _loop_depths

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def _reference_loop_depths(successors, entry):
    """Iterative dominator sets, back edges `u -> h` with h in dom(u), natural loop bodies."""
    order, visited, stack = [], {entry}, [(entry, iter(successors[entry]))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            order.append(node)
            stack.pop()
        elif child not in visited:
            visited.add(child)
            stack.append((child, iter(successors[child])))
    rpo = order[::-1]
    predecessors = {b: [p for p in rpo if b in successors[p]] for b in rpo}
    dom = {b: set(rpo) for b in rpo}
    dom[entry] = {entry}
    changed = True
    while changed:
        changed = False
        for b in rpo[1:]:
            new = set.intersection(*(dom[p] for p in predecessors[b])) | {b}
            if new != dom[b]:
                dom[b], changed = new, True
    loops = {}
    for u in rpo:
        for h in successors[u]:
            if h in dom[u]:
                body, work = loops.setdefault(h, {h}), [u]
                while work:
                    n = work.pop()
                    if n not in body:
                        body.add(n)
                        work.extend(predecessors[n])
    return sorted(sum(h in body for body in loops.values()) for h in loops)


def test_loop_depths_match_dominator_sets_on_random_cfgs():
    rng = random.Random(0)
    for _ in range(400):
        n = rng.randint(1, 12)
        successors = {
            b: list(dict.fromkeys(rng.randrange(n) for _ in range(rng.randint(0, 3))))
            for b in range(n)
        }
        assert sorted(_loop_depths(successors, 0)) == _reference_loop_depths(successors, 0)


def test_irreducible_cycle_is_not_a_loop():
    # 0 -> 1, 0 -> 2, 1 <-> 2: the cycle has two entries, so no block dominates the other.
    assert _loop_depths({0: [1, 2], 1: [2], 2: [1]}, 0) == []


def test_self_loop_and_unreachable_cycle():
    # 1 loops on itself; 2 <-> 3 is unreachable from the entry and does not count.
    assert _loop_depths({0: [1], 1: [1, 4], 2: [3], 3: [2], 4: []}, 0) == [1]
