"""Parsing LLVM IR text and measuring its structure with llvmlite.

Everything here works on the module that `llvmlite.binding.parse_assembly`
builds, never on the text: instructions are classified by their opcode, the
control-flow graph comes from the basic-block operands of terminators, and
loops are the natural loops of back edges (an edge `u -> h` where `h`
dominates `u`), as in LLVM's LoopInfo.

Example:

>>> stats = analyze_module(parse_ir(ir_text))
>>> stats["loops"], stats["max_loop_depth"]
(1, 1)
"""

from __future__ import annotations

import contextlib
import ctypes
import re
from collections import Counter

import llvmlite.binding as llvm
from llvmlite.binding import ffi

from keras_trainer.errors import DataError, IRParseError

INT_ARITH_OPCODES = frozenset(
    ["add", "sub", "mul", "udiv", "sdiv", "urem", "srem", "shl", "lshr", "ashr", "and", "or", "xor"]
)
FLOAT_ARITH_OPCODES = frozenset(["fadd", "fsub", "fmul", "fdiv", "frem", "fneg"])
CAST_OPCODES = frozenset(
    [
        "trunc", "zext", "sext", "fptrunc", "fpext", "fptoui", "fptosi", "uitofp", "sitofp",
        "ptrtoint", "inttoptr", "bitcast", "addrspacecast",
    ]
)
COMPARE_OPCODES = frozenset(["icmp", "fcmp"])
CALL_OPCODES = frozenset(["call", "invoke", "callbr"])
MEMORY_ACCESS_OPCODES = frozenset(["load", "store", "atomicrmw", "cmpxchg", "fence"])
# LLVM's UnaryInstruction subclasses: casts plus these.
UNARY_OPCODES = CAST_OPCODES | frozenset(["alloca", "load", "va_arg", "extractvalue", "freeze", "fneg"])
TERMINATOR_OPCODES = frozenset(
    ["ret", "br", "switch", "indirectbr", "invoke", "callbr", "resume", "unreachable",
     "cleanupret", "catchret", "catchswitch"]
)

_LOCATION = re.compile(r"<string>:(\d+):(\d+):\s*(?:error:\s*)?(.*)")

_initialized = False


def initialize_llvm() -> None:
    """Initializes llvmlite's native target once (llvmlite 0.50: never `llvm.initialize()`)."""
    global _initialized
    if not _initialized:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _initialized = True


def parse_ir(ir_text, entry: "str | None" = None) -> llvm.ModuleRef:
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


def _find_verifier_line(message: str, ir_text: str) -> "int | None":
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


def _dominators(blocks, successors, entry):
    """Dominator sets of the blocks reachable from `entry` (iterative dataflow in RPO)."""
    order = []
    visited = set()
    stack = [(entry, iter(successors[entry]))]
    visited.add(entry)
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            order.append(node)
            stack.pop()
        elif child not in visited:
            visited.add(child)
            stack.append((child, iter(successors[child])))
    rpo = list(reversed(order))
    predecessors = {b: [] for b in rpo}
    for b in rpo:
        for s in successors[b]:
            if s in predecessors:
                predecessors[s].append(b)
    every = set(rpo)
    dom = {b: set(every) for b in rpo}
    dom[entry] = {entry}
    changed = True
    while changed:
        changed = False
        for b in rpo[1:]:
            preds = [dom[p] for p in predecessors[b]]
            new = set.intersection(*preds) if preds else set()
            new = new | {b}
            if new != dom[b]:
                dom[b] = new
                changed = True
    return dom, predecessors


def _natural_loops(successors, dom, predecessors):
    """Natural loops keyed by header: header -> set of body blocks (back edges merged)."""
    loops: dict = {}
    for u in dom:
        for h in successors[u]:
            if h in dom and h in dom[u]:  # back edge u -> h
                body = loops.setdefault(h, {h})
                work = [u]
                while work:
                    n = work.pop()
                    if n not in body:
                        body.add(n)
                        work.extend(predecessors[n])
    return loops


class _RawAPI:
    """llvmlite's exported C functions, re-declared with plain-pointer signatures.

    `ValueRef` wrappers cost a lock, an object and a finalizer per call; for
    a whole-module walk that is ~30x the cost of parsing. These are the same
    C functions that `ValueRef.opcode`, `.operands`, `.value_kind`, `.type`
    and `.get_constant_value` call, on the same parsed module, but they take
    and return pointers as ints (hashable, no wrappers). `analyze_module`
    holds llvmlite's lock for the whole walk instead of once per call.
    """

    _SIGNATURES = {
        "LLVMPY_FunctionBlocksIter": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_BlocksIterNext": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_DisposeBlocksIter": (None, [ctypes.c_void_p]),
        "LLVMPY_BlockInstructionsIter": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_InstructionsIterNext": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_DisposeInstructionsIter": (None, [ctypes.c_void_p]),
        "LLVMPY_InstructionOperandsIter": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_OperandsIterNext": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_DisposeOperandsIter": (None, [ctypes.c_void_p]),
        "LLVMPY_GetOpcodeName": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_DisposeString": (None, [ctypes.c_void_p]),
        "LLVMPY_GetValueKind": (ctypes.c_int, [ctypes.c_void_p]),
        "LLVMPY_TypeOf": (ctypes.c_void_p, [ctypes.c_void_p]),
        "LLVMPY_GetTypeKind": (ctypes.c_int, [ctypes.c_void_p]),
        "LLVMPY_GetTypeBitWidth": (ctypes.c_uint64, [ctypes.c_void_p]),
        "LLVMPY_GetConstantIntNumWords": (ctypes.c_uint, [ctypes.c_void_p]),
        "LLVMPY_GetConstantIntRawValue": (
            ctypes.c_void_p, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_bool)]
        ),
    }

    def __init__(self):
        # A separate CDLL object on the same loaded library, so llvmlite's own
        # function objects (and their argtypes) are left untouched.
        library = ctypes.CDLL(ffi.lib._name, handle=ffi.lib._handle)
        for name, (restype, argtypes) in self._SIGNATURES.items():
            function = getattr(library, name)
            function.restype = restype
            function.argtypes = argtypes
            setattr(self, name[len("LLVMPY_"):], function)

    def collect(self, make, advance, dispose, pointer) -> list:
        """All items of one llvmlite iterator (blocks, instructions, operands)."""
        iterator = make(pointer)
        items = []
        try:
            while True:
                item = advance(iterator)
                if item is None:
                    return items
                items.append(item)
        finally:
            dispose(iterator)


_raw_api = None


def _api() -> _RawAPI:
    global _raw_api
    if _raw_api is None:
        _raw_api = _RawAPI()
    return _raw_api


_VK_BASIC_BLOCK = int(llvm.ValueKind.basic_block)
_VK_CONSTANT_INT = int(llvm.ValueKind.constant_int)
_VK_OTHER_CONSTANTS = frozenset([int(llvm.ValueKind.constant_fp), int(llvm.ValueKind.constant_data_vector)])
_TK_INTEGER = int(llvm.TypeKind.integer)
_ARITH_OPCODES = INT_ARITH_OPCODES | FLOAT_ARITH_OPCODES

# Keys of `analyze_module` that need every instruction's operands (or its
# type); without `operands=True` they are left out of the result.
OPERAND_KEYS = frozenset(
    [
        "phi_args", "blocks_phi_args_gt5", "blocks_phi_args_1_5", "calls_returning_int",
        "const_32bit", "const_64bit", "const_zeros", "const_ones", "binary_const_arg",
    ]
)
_CFG_KEYS = [
    "functions", "cfg_edges", "critical_edges", "blocks_one_pred", "blocks_one_pred_one_succ",
    "blocks_one_pred_two_succ", "blocks_one_succ", "blocks_two_pred", "blocks_two_pred_one_succ",
    "blocks_two_pred_two_succ", "blocks_two_succ", "blocks_more_preds", "blocks_phi_1_3",
    "blocks_phi_gt3", "blocks_no_phi", "blocks_size_lt15", "blocks_size_15_500",
]


def _llvm_lock():
    lock = getattr(ffi.lib, "_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def analyze_module(module: llvm.ModuleRef, operands: bool = True) -> dict:
    """Measures a parsed module: instruction kinds, CFG shape, loops and Autophase counts.

    Each instruction's opcode is read once; operands are walked for
    terminators (the CFG) and, with `operands=True`, for every instruction
    (constants, phi arguments); facts about a constant are read once per
    module (LLVM uniques constants, so its pointer identifies it).

    Args:
        module: a module from `parse_ir`.
        operands: also compute `OPERAND_KEYS` (the Autophase constant and
            phi-argument counts), which needs every operand of every
            instruction; `False` skips that walk and leaves those keys out.

    Returns:
        A dict of named counts (ints) and block-size statistics (floats); see
        docs/features.md for every key.
    """
    api = _api()
    collect = api.collect
    opcode_name = api.GetOpcodeName
    dispose_string = api.DisposeString
    string_at = ctypes.string_at
    value_kind = api.GetValueKind
    type_of = api.TypeOf
    kind_cache: dict = {}  # operand pointer -> value kind
    constant_cache: dict = {}  # constant int pointer -> (width, value)
    instruction_iter = (api.BlockInstructionsIter, api.InstructionsIterNext,
                        api.DisposeInstructionsIter)
    operand_iter = (api.InstructionOperandsIter, api.OperandsIterNext, api.DisposeOperandsIter)
    block_iter = (api.FunctionBlocksIter, api.BlocksIterNext, api.DisposeBlocksIter)

    def kind_of(value):
        kind = kind_cache.get(value)
        if kind is None:
            kind = kind_cache[value] = value_kind(value)
        return kind

    def constant_int(value):
        facts = constant_cache.get(value)
        if facts is None:
            width = api.GetTypeBitWidth(type_of(value))
            words = api.GetConstantIntNumWords(value)
            little_endian = ctypes.c_bool(False)
            data = api.GetConstantIntRawValue(value, ctypes.byref(little_endian))
            raw = bytes((ctypes.c_uint64 * words).from_address(data))
            number = int.from_bytes(raw, "little" if little_endian.value else "big")
            facts = constant_cache[value] = (width, number)
        return facts

    ops: Counter = Counter()
    stats: Counter = Counter({key: 0 for key in _CFG_KEYS})
    if operands:
        stats.update({key: 0 for key in OPERAND_KEYS})
    block_sizes = []
    loop_depths = []
    with _llvm_lock():
        for function in module.functions:
            if function.is_declaration:
                continue
            stats["functions"] += 1
            blocks = collect(*block_iter, function._as_parameter_)
            successors = {}
            summaries = []
            for b in blocks:
                instructions = collect(*instruction_iter, b)
                size, phis, phi_args = 0, 0, 0
                last = len(instructions) - 1
                succ = []
                for position, instruction in enumerate(instructions):
                    size += 1
                    name = opcode_name(instruction)
                    opcode = string_at(name).decode()
                    dispose_string(name)
                    ops[opcode] += 1
                    terminator = position == last and opcode in TERMINATOR_OPCODES
                    is_phi = opcode == "phi"
                    phis += is_phi
                    if not (operands or terminator):
                        continue
                    operand_list = collect(*operand_iter, instruction)
                    if terminator:
                        for operand in operand_list:
                            if kind_of(operand) == _VK_BASIC_BLOCK and operand not in succ:
                                succ.append(operand)
                    if is_phi:
                        phi_args += len(operand_list)
                    elif opcode == "br":
                        ops["br_cond" if len(operand_list) == 3 else "br_uncond"] += 1
                    elif (operands and opcode in CALL_OPCODES
                          and api.GetTypeKind(type_of(instruction)) == _TK_INTEGER):
                        stats["calls_returning_int"] += 1
                    if not operands:
                        continue
                    constant_operand = False
                    for operand in operand_list:
                        kind = kind_of(operand)
                        if kind == _VK_CONSTANT_INT:
                            constant_operand = True
                            width, value = constant_int(operand)
                            stats["const_32bit"] += width == 32
                            stats["const_64bit"] += width == 64
                            stats["const_zeros"] += value == 0
                            stats["const_ones"] += value == 1
                        elif kind in _VK_OTHER_CONSTANTS:
                            constant_operand = True
                    if constant_operand and opcode in _ARITH_OPCODES:
                        stats["binary_const_arg"] += 1
                successors[b] = succ
                summaries.append((b, size, phis, phi_args))
            predecessor_count: Counter = Counter()
            for b in blocks:
                for s in successors[b]:
                    predecessor_count[s] += 1
            for b, size, phis, phi_args in summaries:
                n_succ = len(successors[b])
                stats["cfg_edges"] += n_succ
                for s in successors[b]:
                    if n_succ > 1 and predecessor_count[s] > 1:
                        stats["critical_edges"] += 1
                n_pred = predecessor_count[b]
                stats["blocks_one_pred"] += n_pred == 1
                stats["blocks_one_pred_one_succ"] += n_pred == 1 and n_succ == 1
                stats["blocks_one_pred_two_succ"] += n_pred == 1 and n_succ == 2
                stats["blocks_one_succ"] += n_succ == 1
                stats["blocks_two_pred"] += n_pred == 2
                stats["blocks_two_pred_one_succ"] += n_pred == 2 and n_succ == 1
                stats["blocks_two_pred_two_succ"] += n_pred == 2 and n_succ == 2
                stats["blocks_two_succ"] += n_succ == 2
                stats["blocks_more_preds"] += n_pred > 2
                block_sizes.append(size)
                stats["blocks_phi_1_3"] += 0 < phis <= 3
                stats["blocks_phi_gt3"] += phis > 3
                stats["blocks_no_phi"] += phis == 0
                if operands:
                    stats["blocks_phi_args_gt5"] += phi_args > 5
                    stats["blocks_phi_args_1_5"] += 1 <= phi_args <= 5
                    stats["phi_args"] += phi_args
                stats["blocks_size_lt15"] += size < 15
                stats["blocks_size_15_500"] += 15 <= size <= 500
            if blocks:
                dom, preds = _dominators(blocks, successors, blocks[0])
                loops = _natural_loops(successors, dom, preds)
                for header in loops:
                    loop_depths.append(sum(header in body for body in loops.values()))
    result = {
        "functions": stats["functions"],
        "basic_blocks": len(block_sizes),
        "instructions": sum(block_sizes),
        "cfg_edges": stats["cfg_edges"],
        "loops": len(loop_depths),
        "max_loop_depth": max(loop_depths, default=0),
        "int_arith": sum(ops[o] for o in INT_ARITH_OPCODES),
        "float_arith": sum(ops[o] for o in FLOAT_ARITH_OPCODES),
        "loads": ops["load"],
        "stores": ops["store"],
        "allocas": ops["alloca"],
        "geps": ops["getelementptr"],
        "compares": sum(ops[o] for o in COMPARE_OPCODES),
        "casts": sum(ops[o] for o in CAST_OPCODES),
        "calls": sum(ops[o] for o in CALL_OPCODES),
        "phis": ops["phi"],
        "selects": ops["select"],
        "cond_branches": ops["br_cond"],
        "uncond_branches": ops["br_uncond"],
        "switches": ops["switch"],
        "returns": ops["ret"],
        "memory_accesses": sum(ops[o] for o in MEMORY_ACCESS_OPCODES),
        "unary": sum(ops[o] for o in UNARY_OPCODES),
        "mean_block_size": float(sum(block_sizes)) / len(block_sizes) if block_sizes else 0.0,
        "max_block_size": max(block_sizes, default=0),
        "opcodes": dict(ops),
    }
    for key, value in stats.items():
        result.setdefault(key, value)
    return result
