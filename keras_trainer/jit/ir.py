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

import re
from collections import Counter

import llvmlite.binding as llvm

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


def _successors(block) -> list:
    """Distinct successor blocks of `block`, from its terminator's block operands."""
    instructions = list(block.instructions)
    if not instructions:
        return []
    terminator = instructions[-1]
    if terminator.opcode not in TERMINATOR_OPCODES:
        return []
    seen = []
    for operand in terminator.operands:
        if operand.value_kind == llvm.ValueKind.basic_block and operand not in seen:
            seen.append(operand)
    return seen


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


def analyze_module(module: llvm.ModuleRef) -> dict:
    """Measures a parsed module: instruction kinds, CFG shape, loops and Autophase counts.

    Args:
        module: a module from `parse_ir`.

    Returns:
        A dict of named counts (ints) and block-size statistics (floats); see
        docs/features.md for every key.
    """
    ops: Counter = Counter()
    stats: Counter = Counter()
    block_sizes = []
    loop_depths = []
    for function in module.functions:
        if function.is_declaration:
            continue
        stats["functions"] += 1
        blocks = list(function.blocks)
        successors = {b: _successors(b) for b in blocks}
        predecessor_count: Counter = Counter()
        for b in blocks:
            for s in successors[b]:
                predecessor_count[s] += 1
        for b in blocks:
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
            size, phis, phi_args = 0, 0, 0
            for instruction in b.instructions:
                size += 1
                opcode = instruction.opcode
                ops[opcode] += 1
                operands = list(instruction.operands)
                if opcode == "phi":
                    phis += 1
                    phi_args += len(operands)
                elif opcode == "br":
                    ops["br_cond" if len(operands) == 3 else "br_uncond"] += 1
                elif opcode in CALL_OPCODES and instruction.type.type_kind == llvm.TypeKind.integer:
                    stats["calls_returning_int"] += 1
                constant_operand = False
                for operand in operands:
                    if operand.value_kind == llvm.ValueKind.constant_int:
                        constant_operand = True
                        width = operand.type.type_width
                        stats["const_32bit"] += width == 32
                        stats["const_64bit"] += width == 64
                        value = operand.get_constant_value(signed_int=False)
                        stats["const_zeros"] += value == 0
                        stats["const_ones"] += value == 1
                    elif operand.value_kind in (
                        llvm.ValueKind.constant_fp, llvm.ValueKind.constant_data_vector
                    ):
                        constant_operand = True
                if constant_operand and (opcode in INT_ARITH_OPCODES or opcode in FLOAT_ARITH_OPCODES):
                    stats["binary_const_arg"] += 1
            block_sizes.append(size)
            stats["blocks_phi_1_3"] += 0 < phis <= 3
            stats["blocks_phi_gt3"] += phis > 3
            stats["blocks_no_phi"] += phis == 0
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
