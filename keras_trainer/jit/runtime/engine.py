"""JIT-compiling an IR module under a strategy with MCJIT, into a Python callable.

The entry function's calling convention: every parameter is an integer
(`i1`..`i64`), `float` or `double`, and it returns one of those or `void`.
The corpus uses `i64 @entry(i64 %n)`: `n` is the problem size, passed at run
time so that no strategy can fold the whole computation into a constant.

Example:

>>> fn = compile_ir(ir_text, "entry", "O2")
>>> fn(1000), fn.strategy
(499500, 'O2')
"""

from __future__ import annotations

import ctypes
import time

import llvmlite.binding as llvm

from keras_trainer.errors import DataError
from keras_trainer.jit.llvm_ir.ir import parse_ir
from keras_trainer.jit.strategies import create_target_machine, get_strategy, optimize

_INT_CTYPES = {
    1: ctypes.c_bool,
    8: ctypes.c_int8,
    16: ctypes.c_int16,
    32: ctypes.c_int32,
    64: ctypes.c_int64,
}


def _ctype(type_ref, what: str, entry: str):
    kind = type_ref.type_kind
    if kind == llvm.TypeKind.integer and type_ref.type_width in _INT_CTYPES:
        return _INT_CTYPES[type_ref.type_width]
    if kind == llvm.TypeKind.double:
        return ctypes.c_double
    if kind == llvm.TypeKind.float:
        return ctypes.c_float
    if kind == llvm.TypeKind.void and what == "return":
        return None
    raise DataError(
        f"entry function '@{entry}': {what} type {type_ref} is not supported; use integers "
        "(i1..i64), float or double (and void for the return)"
    )


def entry_signature(module: llvm.ModuleRef, entry: str):
    """The ctypes `(restype, [argtypes])` of `@entry` in a parsed module."""
    function_type = module.get_function(entry).global_value_type
    restype = _ctype(function_type.get_function_return(), "return", entry)
    argtypes = [
        _ctype(t, f"parameter {i}", entry)
        for i, t in enumerate(function_type.get_function_parameters())
    ]
    return restype, argtypes


class CompiledFunction:
    """A JIT-compiled entry function, callable from Python.

    Attributes:
        strategy: name of the strategy it was compiled with.
        entry: the function's name.
        compile_time_ms: parse + optimize + code generation time.
        code_size_bytes: size of the object code for the optimized module
            (only measured when asked, else `None`).
        cfunc: the raw ctypes function (lowest call overhead, for timing).
    """

    def __init__(
        self, engine, cfunc, strategy, entry, argtypes, compile_time_ms, code_size_bytes=None
    ):
        self._engine = engine  # keeps the machine code alive
        self.cfunc = cfunc
        self.strategy = strategy
        self.entry = entry
        self.argtypes = argtypes
        self.compile_time_ms = compile_time_ms
        self.code_size_bytes = code_size_bytes
        self.probabilities = None

    def convert(self, args) -> list:
        """Python values for `args`, checked against the entry's parameters."""
        if len(args) != len(self.argtypes):
            raise DataError(
                f"'@{self.entry}' takes {len(self.argtypes)} argument(s), got {len(args)}"
            )
        converted = []
        for position, (value, ctype) in enumerate(zip(args, self.argtypes)):
            floating = ctype in (ctypes.c_double, ctypes.c_float)
            try:
                converted.append(float(value) if floating else int(value))
            except (TypeError, ValueError):
                raise DataError(
                    f"'@{self.entry}' argument {position}: expected "
                    f"{'a float' if floating else 'an integer'}, got {value!r}"
                ) from None
        return converted

    def __call__(self, *args):
        return self.cfunc(*self.convert(args))

    def __repr__(self):
        return f"CompiledFunction(entry={self.entry!r}, strategy={self.strategy!r})"


def _text_size(object_code: bytes) -> int:
    size = 0
    for section in llvm.ObjectFileRef.from_data(object_code).sections():
        if section.is_text():
            size += section.size()
    return size


def compile_ir(
    ir_text: str, entry: str, strategy, measure_code_size: bool = False
) -> CompiledFunction:
    """Parses, optimizes and MCJIT-compiles `ir_text`; returns `@entry` as a callable.

    Args:
        ir_text: textual LLVM IR.
        entry: name of the function to return.
        strategy: a `Strategy`, name or index (see `strategies.STRATEGIES`).
        measure_code_size: also emit an object file to measure the size of
            its executable sections (`code_size_bytes`).

    Returns:
        A `CompiledFunction`.

    Raises:
        IRParseError, DataError: bad IR, missing entry, unsupported signature.
    """
    strategy = get_strategy(strategy)
    start = time.perf_counter()
    module = parse_ir(ir_text, entry=entry)
    restype, argtypes = entry_signature(module, entry)
    target_machine = create_target_machine(strategy)
    optimize(module, strategy, target_machine)
    code_size = None
    measuring = 0.0
    if measure_code_size:
        # Emitting an object file is extra work a JIT would not do: not timed.
        before = time.perf_counter()
        code_size = _text_size(target_machine.emit_object(module))
        measuring = time.perf_counter() - before
    engine = llvm.create_mcjit_compiler(module, target_machine)
    engine.finalize_object()
    address = engine.get_function_address(entry)
    compile_time_ms = (time.perf_counter() - start - measuring) * 1000.0
    cfunc = ctypes.CFUNCTYPE(restype, *argtypes)(address)
    return CompiledFunction(
        engine, cfunc, strategy.name, entry, argtypes, compile_time_ms, code_size
    )
