"""The kernel corpus: every family parses, runs and is reproducible."""

import pytest

from keras_trainer.jit.data.corpus import FAMILIES, generate_corpus, generate_kernel
from keras_trainer.jit.llvm_ir.ir import parse_ir
from keras_trainer.jit.runtime.engine import compile_ir

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def test_corpus_covers_every_family_and_is_seeded():
    first = generate_corpus(24, seed=3)
    again = generate_corpus(24, seed=3)
    assert {k.family for k in first} == set(FAMILIES)
    assert [k.ir for k in first] == [k.ir for k in again]
    assert len({k.ir for k in first}) == 24


def test_different_seeds_give_different_programs():
    assert generate_corpus(12, seed=0)[0].ir != generate_corpus(12, seed=1)[0].ir


def test_every_family_verifies_in_both_styles():
    for family in FAMILIES:
        for style in ("ssa", "memory"):
            kernel = generate_kernel(family, seed=5, style=style)
            parse_ir(kernel.ir, entry="entry")
            assert kernel.args and kernel.args[0] >= 1


def test_both_styles_compute_the_same_result():
    for family in ("stencil", "switchy", "data_dependent"):
        ssa = generate_kernel(family, seed=9, style="ssa")
        memory = generate_kernel(family, seed=9, style="memory")
        n = min(ssa.args[0], 3)
        assert compile_ir(ssa.ir, "entry", "O1")(n) == compile_ir(memory.ir, "entry", "O0")(n)
