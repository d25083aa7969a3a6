"""Parsing and verifying LLVM IR text with llvmlite.

`parse_ir` turns IR text into a verified llvmlite module and names the line of
a problem; `keras_trainer.jit.llvm_ir.ir_analysis.analyze_module` measures the module.

Example:

>>> module = parse_ir(ir_text, entry="kernel")
>>> sorted(f.name for f in module.functions if not f.is_declaration)
['kernel']
"""

from __future__ import annotations

import re

import llvmlite.binding as llvm

from keras_trainer.errors import DataError, IRParseError

_LOCATION = re.compile(r"<string>:(\d+):(\d+):\s*(?:error:\s*)?(.*)")

_initialized = False


def initialize_llvm() -> None:
    """Initializes llvmlite's native target once (llvmlite 0.50: never `llvm.initialize()`)."""
    global _initialized
    if not _initialized:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _initialized = True


def parse_ir(ir_text, entry: str | None = None) -> llvm.ModuleRef:
    """Parses and verifies LLVM IR text.

    Args:
        ir_text: the textual IR of one module.
        entry: if given, the name of a function the module must define.

    Returns:
        The verified `llvmlite.binding.ModuleRef`.

    Raises:
        DataError: `ir_text` is not a string, or `entry` is not defined in it.
        IRParseError: the text is empty, does not parse, does not verify, or
            defines no function. `line` is the 1-based line of the problem
            when llvmlite reports one (or when the verifier's offending
            instruction can be found in the text).
    """
    if not isinstance(ir_text, str):
        raise DataError(f"LLVM IR must be a string, got {type(ir_text).__name__}")
    if not ir_text.strip():
        raise IRParseError("LLVM IR is empty", line=None)
    initialize_llvm()
    try:
        module = llvm.parse_assembly(ir_text)
    except RuntimeError as error:
        message = str(error).replace("LLVM IR parsing error\n", "").strip()
        match = _LOCATION.search(message)
        line = int(match.group(1)) if match else None
        detail = match.group(3) if match else message
        where = f"line {line}: " if line is not None else ""
        raise IRParseError(f"LLVM IR does not parse: {where}{detail}", line=line) from None
    try:
        module.verify()
    except RuntimeError as error:
        message = str(error).strip()
        line = _find_verifier_line(message, ir_text)
        where = f"line {line}: " if line is not None else ""
        raise IRParseError(
            f"LLVM IR does not verify: {where}{message.splitlines()[0]}\n{message}", line=line
        ) from None
    if not any(not f.is_declaration for f in module.functions):
        raise IRParseError("LLVM IR module defines no function (only declarations or globals)")
    if entry is not None:
        function = _get_function(module, entry)
        if function is None or function.is_declaration:
            defined = sorted(f.name for f in module.functions if not f.is_declaration)
            raise DataError(
                f"entry function '@{entry}' is not defined in the module; defined: {defined}"
            )
    return module


def _get_function(module, name):
    try:
        return module.get_function(name)
    except NameError:
        return None


def _find_verifier_line(message: str, ir_text: str) -> int | None:
    """Finds the line of the first instruction that the verifier message quotes."""
    lines = [line.strip() for line in ir_text.splitlines()]
    for quoted in message.splitlines()[1:]:
        quoted = quoted.strip()
        if not quoted:
            continue
        for number, line in enumerate(lines, start=1):
            if line == quoted:
                return number
    return None
