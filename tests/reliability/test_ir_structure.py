"""The untrusted-IR rules read the parsed module, not the text (issue 26, item 6)."""

import argparse

import pytest

pytest.importorskip("llvmlite")

from keras_trainer.errors import DataError  # noqa: E402
from keras_trainer.jit.runtime.adaptive import AdaptiveJIT  # noqa: E402
from keras_trainer.jit.runtime.sandbox import check_compilable_ir, check_untrusted_ir  # noqa: E402

from ..jit.test_adaptive import save_tiny_model  # noqa: E402
from .ir_snippets import calls_system  # noqa: E402

ASM_AFTER_A_COMMENT = """define i64 @entry(i64 %n) {
entry:
  %r = call i64 asm ; a comment hides nothing
 "syscall", "={rax}"()
  ret i64 %r
}
"""
ASM_WITHOUT_A_SPACE = """define i64 @entry(i64 %n) {
entry:
  %r = call i64 asm"syscall", "={rax}"()
  ret i64 %r
}
"""
MODULE_ASM = """module asm ".globl evil"
define i64 @entry(i64 %n) {
entry:
  ret i64 %n
}
"""
COMPUTED_ADDRESS = """define i64 @entry(i64 %n) {
entry:
  %r = call i64 inttoptr (i64 4198400 to ptr)(i64 %n)
  ret i64 %r
}
"""
COMPUTED_ADDRESS_IN_A_REGISTER = """define i64 @entry(i64 %n) {
entry:
  %f = inttoptr i64 %n to ptr
  %r = call i64 %f(i64 %n)
  ret i64 %r
}
"""


@pytest.mark.parametrize(
    "ir, problem",
    [
        (ASM_AFTER_A_COMMENT, "@entry contains inline assembly"),
        (ASM_WITHOUT_A_SPACE, "@entry contains inline assembly"),
        (MODULE_ASM, "module-level inline assembly"),
        (COMPUTED_ADDRESS, "@entry contains a call to a computed address"),
        (COMPUTED_ADDRESS_IN_A_REGISTER, "@entry contains a call to a computed address"),
    ],
    ids=["asm-comment-newline", "asm-no-space", "module-asm", "inttoptr-constant", "inttoptr"],
)
def test_hidden_assembly_and_computed_calls_are_refused(ir, problem):
    with pytest.raises(DataError, match=problem):
        check_untrusted_ir(ir, "entry")


def test_trusted_ir_gets_the_structural_check_instead_of_aborting_the_process(tmp_path):
    model = save_tiny_model(tmp_path / "o2.keras", favourite=2)
    with pytest.raises(DataError, match="@entry contains inline assembly"):
        AdaptiveJIT(model, trusted=True).compile(ASM_AFTER_A_COMMENT, "entry", args=[1])
    check_compilable_ir(calls_system(tmp_path / "x"), "entry")  # trusted may call out


def test_collect_applies_the_untrusted_rules_unless_trusted(tmp_path, capsys):
    from keras_trainer.jit.cli import register

    marker = tmp_path / "ran"
    source = tmp_path / "system.ll"
    source.write_text(calls_system(marker))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["collect", str(source), "--output", str(tmp_path / "d.json")])
    assert args.handler(args) == 2
    error = capsys.readouterr().err
    assert "system.ll" in error and "@system" in error and "--trusted" in error
    assert not marker.exists()
    assert parser.parse_args(["collect", str(source), "-o", "d.json", "--trusted"]).trusted
