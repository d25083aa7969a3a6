"""Measuring the structure of a parsed LLVM IR module (llvmlite).

Everything here works on the module that `llvmlite.binding.parse_assembly`
builds (see `keras_trainer.jit.llvm_ir.ir.parse_ir`), never on the text: instructions
are classified by their opcode, the control-flow graph comes from the
basic-block operands of terminators, and loops are the natural loops of back
edges (an edge `u -> h` where `h` dominates `u`), as in LLVM's LoopInfo.

Example:

>>> stats = analyze_module(parse_ir(ir_text))
>>> stats["loops"], stats["max_loop_depth"]
(1, 1)
"""

from __future__ import annotations

import contextlib
import ctypes
from collections import Counter

import llvmlite.binding as llvm
from llvmlite.binding import ffi

INT_ARITH_OPCODES = frozenset(
    ["add", "sub", "mul", "udiv", "sdiv", "urem", "srem", "shl", "lshr", "ashr", "and", "or", "xor"]
)
FLOAT_ARITH_OPCODES = frozenset(["fadd", "fsub", "fmul", "fdiv", "frem", "fneg"])
CAST_OPCODES = frozenset(
    [
        "trunc",
        "zext",
        "sext",
        "fptrunc",
        "fpext",
        "fptoui",
        "fptosi",
        "uitofp",
        "sitofp",
        "ptrtoint",
        "inttoptr",
        "bitcast",
        "addrspacecast",
    ]
)
COMPARE_OPCODES = frozenset(["icmp", "fcmp"])
CALL_OPCODES = frozenset(["call", "invoke", "callbr"])
MEMORY_ACCESS_OPCODES = frozenset(["load", "store", "atomicrmw", "cmpxchg", "fence"])
# LLVM's UnaryInstruction subclasses: casts plus these.
UNARY_OPCODES = CAST_OPCODES | frozenset(
    ["alloca", "load", "va_arg", "extractvalue", "freeze", "fneg"]
)
TERMINATOR_OPCODES = frozenset(
    [
        "ret",
        "br",
        "switch",
        "indirectbr",
        "invoke",
        "callbr",
        "resume",
        "unreachable",
        "cleanupret",
        "catchret",
        "catchswitch",
    ]
)


def _loop_depths(successors: dict, entry) -> list:
    """Nesting depth of each natural loop of a CFG (back edges to one header merged).

    A back edge is an edge `u -> h` where `h` dominates `u`; every back edge
    is a retreating edge of a depth-first search, so only those are tested,
    and `h` dominates `u` exactly when `u` cannot be reached from `entry`
    without passing `h`. That is one small search per candidate header
    instead of dominator sets for every block (same loops, as in LLVM's
    LoopInfo). A loop's depth is the number of loop bodies holding its header.

    Args:
        successors: block -> list of distinct successor blocks.
        entry: the entry block.

    Returns:
        One depth per loop header, for the blocks reachable from `entry`.
    """
    visited = {entry}
    on_path = {entry}
    stack = [(entry, iter(successors[entry]))]
    retreating = []
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            on_path.discard(node)
        elif child in on_path:
            retreating.append((node, child))
        elif child not in visited:
            visited.add(child)
            on_path.add(child)
            stack.append((child, iter(successors[child])))
    if not retreating:
        return []
    avoiding: dict = {}  # h -> blocks reachable from entry without passing h
    loops: dict = {}
    predecessors = None
    for u, h in retreating:
        if h not in avoiding:
            reach = set()
            if h != entry:
                reach.add(entry)
                work = [entry]
                while work:
                    for s in successors[work.pop()]:
                        if s != h and s not in reach:
                            reach.add(s)
                            work.append(s)
            avoiding[h] = reach
        if u in avoiding[h]:
            continue  # h does not dominate u: not a back edge
        if predecessors is None:
            predecessors = {b: [] for b in visited}
            for b in visited:
                for s in successors[b]:
                    predecessors[s].append(b)
        body = loops.setdefault(h, {h})
        work = [u]
        while work:
            n = work.pop()
            if n not in body:
                body.add(n)
                work.extend(predecessors[n])
    return [sum(header in body for body in loops.values()) for header in loops]


class _Pointer(ctypes.c_void_p):
    """An LLVM pointer returned by the raw functions (a subclass, so ctypes keeps the object)."""


_string_at = getattr(ctypes, "_string_at", ctypes.string_at)


class _RawAPI:
    """llvmlite's exported C functions, called with raw pointers.

    `ValueRef` wrappers cost a lock, an object, argument conversion and a
    finalizer per call; for a whole-module walk that was ~30x the cost of
    parsing. These are the same C functions that `ValueRef.opcode`,
    `.operands`, `.value_kind`, `.type` and `.get_constant_value` call, on
    the same parsed module. Every argument is a ctypes pointer object (never
    a bare int), so no `argtypes` conversion is needed; `analyze_module`
    holds llvmlite's lock for the whole walk instead of once per call.
    """

    _RESTYPES = {
        "LLVMPY_FunctionBlocksIter": _Pointer,
        "LLVMPY_BlocksIterNext": _Pointer,
        "LLVMPY_DisposeBlocksIter": None,
        "LLVMPY_BlockInstructionsIter": _Pointer,
        "LLVMPY_InstructionsIterNext": _Pointer,
        "LLVMPY_DisposeInstructionsIter": None,
        "LLVMPY_InstructionOperandsIter": _Pointer,
        "LLVMPY_OperandsIterNext": _Pointer,
        "LLVMPY_DisposeOperandsIter": None,
        "LLVMPY_GetOpcodeName": _Pointer,
        "LLVMPY_DisposeString": None,
        "LLVMPY_GetValueKind": ctypes.c_int,
        "LLVMPY_TypeOf": _Pointer,
        "LLVMPY_GetTypeKind": ctypes.c_int,
        "LLVMPY_GetTypeBitWidth": ctypes.c_uint64,
        "LLVMPY_GetConstantIntNumWords": ctypes.c_uint,
        "LLVMPY_GetConstantIntRawValue": ctypes.c_void_p,
    }

    def __init__(self):
        # A separate CDLL object on the same loaded library, so llvmlite's own
        # function objects (and their argtypes) are left untouched.
        library = ctypes.CDLL(ffi.lib._name, handle=ffi.lib._handle)
        for name, restype in self._RESTYPES.items():
            function = getattr(library, name)
            function.restype = restype
            setattr(self, name[len("LLVMPY_") :], function)

    @staticmethod
    def collect(make, advance, dispose, pointer) -> list:
        """All items of one llvmlite iterator (blocks, instructions, operands)."""
        iterator = make(pointer)
        items = []
        try:
            append = items.append
            item = advance(iterator)
            while item:  # a NULL pointer ends the iteration
                append(item)
                item = advance(iterator)
            return items
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
_VK_OTHER_CONSTANTS = frozenset(
    [int(llvm.ValueKind.constant_fp), int(llvm.ValueKind.constant_data_vector)]
)
_TK_INTEGER = int(llvm.TypeKind.integer)


def _as_bytes(names):
    return frozenset(name.encode() for name in names)


# Opcode names as the C function returns them (bytes), to compare before decoding.
_TERMINATORS_B = _as_bytes(TERMINATOR_OPCODES)
_CALLS_B = _as_bytes(CALL_OPCODES)
_ARITH_B = _as_bytes(INT_ARITH_OPCODES | FLOAT_ARITH_OPCODES)

# Keys of `analyze_module` that need every instruction's operands (or its
# type); without `operands=True` they are left out of the result.
OPERAND_KEYS = frozenset(
    [
        "phi_args",
        "blocks_phi_args_gt5",
        "blocks_phi_args_1_5",
        "calls_returning_int",
        "const_32bit",
        "const_64bit",
        "const_zeros",
        "const_ones",
        "binary_const_arg",
    ]
)


def _llvm_lock():
    lock = getattr(ffi.lib, "_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


class _Walker:
    """One pass over a module's instructions through `_RawAPI` (see `analyze_module`)."""

    def __init__(self, operands: bool):
        api = _api()
        self.api = api
        self.operands = operands
        self.ops: dict = {}  # opcode (bytes) -> count, plus b"br_cond"/b"br_uncond"
        self.kinds: dict = {}  # operand address -> value kind
        self.constants: dict = {}  # constant int address -> (width, unsigned value)
        self.const_32bit = self.const_64bit = self.const_zeros = self.const_ones = 0
        self.binary_const_arg = self.calls_returning_int = 0

    def blocks(self, function) -> list:
        api = self.api
        return api.collect(
            api.FunctionBlocksIter,
            api.BlocksIterNext,
            api.DisposeBlocksIter,
            function._as_parameter_,
        )

    def block(self, block):
        """Returns (size, phis, phi_args, distinct successor addresses) of one block."""
        api = self.api
        collect = api.collect
        opcode_name, dispose_string = api.GetOpcodeName, api.DisposeString
        ops = self.ops
        operands = self.operands
        instructions = collect(
            api.BlockInstructionsIter, api.InstructionsIterNext, api.DisposeInstructionsIter, block
        )
        phis = phi_args = 0
        successors = []
        last = len(instructions) - 1
        for position, instruction in enumerate(instructions):
            name = opcode_name(instruction)
            opcode = _string_at(name, -1)
            dispose_string(name)
            ops[opcode] = ops.get(opcode, 0) + 1
            terminator = position == last and opcode in _TERMINATORS_B
            is_phi = opcode == b"phi"
            phis += is_phi
            if not (operands or terminator):
                continue
            operand_list = collect(
                api.InstructionOperandsIter,
                api.OperandsIterNext,
                api.DisposeOperandsIter,
                instruction,
            )
            if terminator:
                for operand in operand_list:
                    address = operand.value
                    if self.kind(operand, address) == _VK_BASIC_BLOCK and address not in successors:
                        successors.append(address)
            if is_phi:
                phi_args += len(operand_list)
            elif opcode == b"br":
                key = b"br_cond" if len(operand_list) == 3 else b"br_uncond"
                ops[key] = ops.get(key, 0) + 1
            elif (
                operands
                and opcode in _CALLS_B
                and api.GetTypeKind(api.TypeOf(instruction)) == _TK_INTEGER
            ):
                self.calls_returning_int += 1
            if operands:
                self.count_constants(opcode, operand_list)
        return len(instructions), phis, phi_args, successors

    def kind(self, operand, address) -> int:
        kind = self.kinds.get(address)
        if kind is None:
            kind = self.kinds[address] = self.api.GetValueKind(operand)
        return kind

    def count_constants(self, opcode, operand_list) -> None:
        constant_operand = False
        for operand in operand_list:
            address = operand.value
            kind = self.kind(operand, address)
            if kind == _VK_CONSTANT_INT:
                constant_operand = True
                width, value = self.constant_int(operand, address)
                self.const_32bit += width == 32
                self.const_64bit += width == 64
                self.const_zeros += value == 0
                self.const_ones += value == 1
            elif kind in _VK_OTHER_CONSTANTS:
                constant_operand = True
        if constant_operand and opcode in _ARITH_B:
            self.binary_const_arg += 1

    def constant_int(self, operand, address) -> tuple:
        # LLVM uniques constants, so one address is one (immutable) value.
        facts = self.constants.get(address)
        if facts is None:
            api = self.api
            width = api.GetTypeBitWidth(api.TypeOf(operand))
            words = api.GetConstantIntNumWords(operand)
            little_endian = ctypes.c_bool(False)
            data = api.GetConstantIntRawValue(operand, ctypes.byref(little_endian))
            raw = bytes((ctypes.c_uint64 * words).from_address(data))
            value = int.from_bytes(raw, "little" if little_endian.value else "big")
            facts = self.constants[address] = (width, value)
        return facts


def analyze_module(module: llvm.ModuleRef, operands: bool = True) -> dict:
    """Measures a parsed module: instruction kinds, CFG shape, loops and Autophase counts.

    Each instruction's opcode is read once; operands are walked for
    terminators (the CFG) and, with `operands=True`, for every instruction
    (constants, phi arguments); facts about a constant are read once per
    module (LLVM uniques constants, so its address identifies it).

    Args:
        module: a module from `parse_ir`.
        operands: also compute `OPERAND_KEYS` (the Autophase constant and
            phi-argument counts), which needs every operand of every
            instruction; `False` skips that walk and leaves those keys out.

    Returns:
        A dict of named counts (ints) and block-size statistics (floats); see
        docs/features.md for every key.
    """
    walker = _Walker(operands)
    functions = 0
    shapes: Counter = Counter()
    block_sizes = []
    loop_depths = []
    with _llvm_lock():
        for function in module.functions:
            if function.is_declaration:
                continue
            functions += 1
            addresses = []
            successors = {}
            summaries = []
            for block in walker.blocks(function):
                size, phis, phi_args, succ = walker.block(block)
                addresses.append(block.value)
                successors[block.value] = succ
                summaries.append((size, phis, phi_args, succ))
            shapes.update(_block_shapes(addresses, successors, summaries))
            block_sizes.extend(summary[0] for summary in summaries)
            if addresses:
                loop_depths.extend(_loop_depths(successors, addresses[0]))
    ops = {opcode.decode(): count for opcode, count in walker.ops.items()}

    def total(opcodes):
        return sum(ops.get(o, 0) for o in opcodes)

    result = {
        "functions": functions,
        "basic_blocks": len(block_sizes),
        "instructions": sum(block_sizes),
        "cfg_edges": shapes["cfg_edges"],
        "loops": len(loop_depths),
        "max_loop_depth": max(loop_depths, default=0),
        "int_arith": total(INT_ARITH_OPCODES),
        "float_arith": total(FLOAT_ARITH_OPCODES),
        "loads": ops.get("load", 0),
        "stores": ops.get("store", 0),
        "allocas": ops.get("alloca", 0),
        "geps": ops.get("getelementptr", 0),
        "compares": total(COMPARE_OPCODES),
        "casts": total(CAST_OPCODES),
        "calls": total(CALL_OPCODES),
        "phis": ops.get("phi", 0),
        "selects": ops.get("select", 0),
        "cond_branches": ops.get("br_cond", 0),
        "uncond_branches": ops.get("br_uncond", 0),
        "switches": ops.get("switch", 0),
        "returns": ops.get("ret", 0),
        "memory_accesses": total(MEMORY_ACCESS_OPCODES),
        "unary": total(UNARY_OPCODES),
        "mean_block_size": float(sum(block_sizes)) / len(block_sizes) if block_sizes else 0.0,
        "max_block_size": max(block_sizes, default=0),
        "opcodes": ops,
        **{key: shapes[key] for key in _BLOCK_SHAPE_KEYS},
    }
    if operands:
        result.update(
            {
                **{key: shapes[key] for key in _PHI_ARGUMENT_KEYS},
                "calls_returning_int": walker.calls_returning_int,
                "const_32bit": walker.const_32bit,
                "const_64bit": walker.const_64bit,
                "const_zeros": walker.const_zeros,
                "const_ones": walker.const_ones,
                "binary_const_arg": walker.binary_const_arg,
            }
        )
    return result


# Block-shape counts of `analyze_module`, in the order of its result.
_BLOCK_SHAPE_KEYS = (
    "critical_edges",
    "blocks_one_pred",
    "blocks_one_pred_one_succ",
    "blocks_one_pred_two_succ",
    "blocks_one_succ",
    "blocks_two_pred",
    "blocks_two_pred_one_succ",
    "blocks_two_pred_two_succ",
    "blocks_two_succ",
    "blocks_more_preds",
    "blocks_phi_1_3",
    "blocks_phi_gt3",
    "blocks_no_phi",
    "blocks_size_lt15",
    "blocks_size_15_500",
)
_PHI_ARGUMENT_KEYS = ("phi_args", "blocks_phi_args_gt5", "blocks_phi_args_1_5")


def _block_shapes(addresses: list, successors: dict, summaries: list) -> dict:
    """One function's CFG edges and its blocks counted by predecessors, successors,
    phis and size (the Autophase block counts)."""
    predecessor_count: Counter = Counter()
    for succ in successors.values():
        predecessor_count.update(succ)
    cfg_edges = critical_edges = 0
    one_pred = one_pred_one_succ = one_pred_two_succ = one_succ = 0
    two_pred = two_pred_one_succ = two_pred_two_succ = two_succ = more_preds = 0
    phi_1_3 = phi_gt3 = no_phi = phi_args_gt5 = phi_args_1_5 = phi_args_total = 0
    size_lt15 = size_15_500 = 0
    for address, (size, phis, phi_args, succ) in zip(addresses, summaries):
        n_succ = len(succ)
        cfg_edges += n_succ
        if n_succ > 1:
            critical_edges += sum(predecessor_count[s] > 1 for s in succ)
        n_pred = predecessor_count[address]
        if n_pred == 1:
            one_pred += 1
            one_pred_one_succ += n_succ == 1
            one_pred_two_succ += n_succ == 2
        elif n_pred == 2:
            two_pred += 1
            two_pred_one_succ += n_succ == 1
            two_pred_two_succ += n_succ == 2
        elif n_pred > 2:
            more_preds += 1
        one_succ += n_succ == 1
        two_succ += n_succ == 2
        phi_1_3 += 0 < phis <= 3
        phi_gt3 += phis > 3
        no_phi += phis == 0
        phi_args_gt5 += phi_args > 5
        phi_args_1_5 += 1 <= phi_args <= 5
        phi_args_total += phi_args
        size_lt15 += size < 15
        size_15_500 += 15 <= size <= 500
    return {
        "cfg_edges": cfg_edges,
        "critical_edges": critical_edges,
        "blocks_one_pred": one_pred,
        "blocks_one_pred_one_succ": one_pred_one_succ,
        "blocks_one_pred_two_succ": one_pred_two_succ,
        "blocks_one_succ": one_succ,
        "blocks_two_pred": two_pred,
        "blocks_two_pred_one_succ": two_pred_one_succ,
        "blocks_two_pred_two_succ": two_pred_two_succ,
        "blocks_two_succ": two_succ,
        "blocks_more_preds": more_preds,
        "blocks_phi_1_3": phi_1_3,
        "blocks_phi_gt3": phi_gt3,
        "blocks_no_phi": no_phi,
        "blocks_size_lt15": size_lt15,
        "blocks_size_15_500": size_15_500,
        "phi_args": phi_args_total,
        "blocks_phi_args_gt5": phi_args_gt5,
        "blocks_phi_args_1_5": phi_args_1_5,
    }
