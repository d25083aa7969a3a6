"""Structured control flow over `llvmlite.ir`: the building blocks of generated kernels.

`Emitter` writes loops and if/else in one function in either of two styles:
"ssa" (loop-carried values in phi nodes, like optimized front-end output) or
"memory" (every variable in an `alloca`, like `clang -O0` output). The helpers
make the module and entry function every kernel shares, arrays on the stack or
in globals, and random integer operations drawn from a seeded `random.Random`.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

I1 = ir.IntType(1)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F64 = ir.DoubleType()


def c64(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def cf(value: float) -> ir.Constant:
    return ir.Constant(F64, value)


class Emitter:
    """Builds structured control flow in one function, in "ssa" or "memory" style.

    `loop` takes the loop-carried values and a body that returns their
    updated values; in "ssa" style they live in phi nodes, in "memory" style
    in allocas (loaded and stored every iteration, as unoptimized code does).
    """

    def __init__(self, function: ir.Function, style: str):
        self.function = function
        self.style = style
        self.entry_block = function.append_basic_block("entry")
        self.alloca_builder = ir.IRBuilder(self.entry_block)
        start = function.append_basic_block("start")
        self.start_block = start
        self.b = ir.IRBuilder(start)

    def alloca(self, typ, name=""):
        return self.alloca_builder.alloca(typ, name=name)

    def finish(self, value):
        self.b.ret(value)
        self.alloca_builder.branch(self.start_block)

    def loop(self, lo, hi, carried: list, body: Callable, step=1, name="loop") -> list:
        b = self.b
        step_value = c64(step) if isinstance(step, int) else step
        header = self.function.append_basic_block(f"{name}.header")
        body_block = self.function.append_basic_block(f"{name}.body")
        exit_block = self.function.append_basic_block(f"{name}.exit")
        if self.style == "ssa":
            pre = b.block
            b.branch(header)
            b.position_at_end(header)
            index = b.phi(I64, name=f"{name}.i")
            index.add_incoming(lo, pre)
            phis = []
            for k, value in enumerate(carried):
                phi = b.phi(value.type, name=f"{name}.v{k}")
                phi.add_incoming(value, pre)
                phis.append(phi)
            b.cbranch(b.icmp_signed("<", index, hi), body_block, exit_block)
            b.position_at_end(body_block)
            updated = body(index, list(phis))
            following = b.add(index, step_value)
            latch = b.block
            b.branch(header)
            index.add_incoming(following, latch)
            for phi, value in zip(phis, updated):
                phi.add_incoming(value, latch)
            b.position_at_end(exit_block)
            return list(phis)
        index_slot = self.alloca(I64, name=f"{name}.i.addr")
        slots = [self.alloca(v.type, name=f"{name}.v{k}.addr") for k, v in enumerate(carried)]
        b.store(lo, index_slot)
        for slot, value in zip(slots, carried):
            b.store(value, slot)
        b.branch(header)
        b.position_at_end(header)
        b.cbranch(b.icmp_signed("<", b.load(index_slot), hi), body_block, exit_block)
        b.position_at_end(body_block)
        updated = body(b.load(index_slot), [b.load(s) for s in slots])
        for slot, value in zip(slots, updated):
            b.store(value, slot)
        b.store(b.add(b.load(index_slot), step_value), index_slot)
        b.branch(header)
        b.position_at_end(exit_block)
        return [b.load(s) for s in slots]

    def if_else(self, cond, then_fn: Callable, else_fn: Callable, name="if"):
        b = self.b
        then_block = self.function.append_basic_block(f"{name}.then")
        else_block = self.function.append_basic_block(f"{name}.else")
        merge = self.function.append_basic_block(f"{name}.end")
        b.cbranch(cond, then_block, else_block)
        b.position_at_end(then_block)
        then_value = then_fn()
        then_end = b.block
        b.branch(merge)
        b.position_at_end(else_block)
        else_value = else_fn()
        else_end = b.block
        b.branch(merge)
        b.position_at_end(merge)
        phi = b.phi(then_value.type, name=f"{name}.value")
        phi.add_incoming(then_value, then_end)
        phi.add_incoming(else_value, else_end)
        return phi


def new_module(name: str):
    module = ir.Module(name=name)
    entry = ir.Function(module, ir.FunctionType(I64, [I64]), name="entry")
    entry.args[0].name = "n"
    return module, entry


def global_array(module, typ, size, name):
    array = ir.GlobalVariable(module, ir.ArrayType(typ, size), name=name)
    array.linkage = "internal"
    array.initializer = ir.Constant(ir.ArrayType(typ, size), None)
    return array


def array_of(e: Emitter, module, typ, size, name, on_stack: bool):
    if on_stack:
        return e.alloca(ir.ArrayType(typ, size), name=name)
    return global_array(module, typ, size, name)


def element_at(b, array, index):
    return b.gep(array, [c64(0), index], inbounds=True)


def random_int_op(b, rng, x, y):
    op = rng.choice(["add", "sub", "xor", "mul", "or_add", "shl_xor"])
    if op == "add":
        return b.add(x, y)
    if op == "sub":
        return b.sub(x, y)
    if op == "xor":
        return b.xor(x, y)
    if op == "mul":
        return b.mul(x, b.or_(y, c64(1)))
    if op == "or_add":
        return b.add(b.or_(x, c64(rng.randrange(1, 255))), y)
    return b.xor(b.shl(x, c64(rng.randrange(1, 5))), b.lshr(y, c64(rng.randrange(1, 5))))


def checksum_f64(b, value):
    return b.bitcast(value, I64)
