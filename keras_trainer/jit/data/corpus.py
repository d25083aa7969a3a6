"""A seeded generator of varied LLVM IR kernels, built with `llvmlite.ir`.

Every kernel is a module whose entry is `i64 @entry(i64 %n)`: `n` is the
problem size (trip count, repetitions or recursion depth), passed at run time
so that no strategy can fold the work into a constant; the return value is a
checksum (float results are returned bit-for-bit, via `bitcast double to
i64`). Kernels come in twelve families (integer reductions, loop nests,
stencils over global or stack arrays, matrix multiply, branchy and switch
loops, helper calls, recursion, float math, strided/reversed/gather memory
patterns, prefix sums, data-dependent loops) and in two code styles:
"ssa" (loop variables in phi nodes, like optimized front-end output) and
"memory" (every variable in an `alloca`, like `clang -O0` output). Sizes,
element types, operations, nest depths and strides are drawn from the seed.

Example:

>>> kernels = generate_corpus(300, seed=0)
>>> kernels[0].name, kernels[0].entry, kernels[0].args
('int_reduction_0000', 'entry', [1834])
"""

from __future__ import annotations

import dataclasses
import math
import random

from llvmlite import ir

from keras_trainer.jit.llvm_ir.ir_emitter import (
    F64,
    I64,
    Emitter,
    array_of,
    c64,
    cf,
    checksum_f64,
    element_at,
    global_array,
    new_module,
    random_int_op,
)


@dataclasses.dataclass
class Kernel:
    """One generated program: its IR, entry name and arguments."""

    name: str
    family: str
    ir: str
    entry: str = "entry"
    args: list = dataclasses.field(default_factory=list)


def _size(rng, lo_log2, hi_log2) -> int:
    # Log-uniform work; the +2 keeps most O0 runs well above the ~0.3 us call overhead.
    return int(2 ** (rng.uniform(lo_log2, hi_log2) + 2))


# Each family: (rng, style) -> (module, args).


def int_reduction(rng, style):
    module, f = new_module("int_reduction")
    e = Emitter(f, style)
    n = f.args[0]
    ops = rng.randint(1, 6)
    choices = [random.Random(rng.random()) for _ in range(ops)]

    def body(i, acc):
        value = acc[0]
        for r in choices:
            value = random_int_op(e.b, r, value, i)
        return [value]

    (result,) = e.loop(c64(0), n, [c64(rng.randrange(1, 1000))], body)
    e.finish(result)
    return module, [_size(rng, 3, 17)]


def loop_nest(rng, style):
    module, f = new_module("loop_nest")
    e = Emitter(f, style)
    n = f.args[0]
    depth = rng.randint(2, 3)
    inner = [rng.choice([3, 4, 8, 16, 17, 32, 100]) for _ in range(depth - 1)]

    def level(k):
        def body(i, acc):
            if k == len(inner):
                return [e.b.add(e.b.mul(acc[0], c64(3)), e.b.xor(i, c64(k + 1)))]
            (inner_acc,) = e.loop(c64(0), c64(inner[k]), [acc[0]], level(k + 1), name=f"l{k + 1}")
            return [e.b.add(inner_acc, i)]

        return body

    (result,) = e.loop(c64(0), n, [c64(1)], level(0), name="l0")
    e.finish(result)
    work = math.prod(inner)
    return module, [max(1, _size(rng, 3, 16) // work)]


def stencil(rng, style):
    module, f = new_module("stencil")
    e = Emitter(f, style)
    n = f.args[0]
    size = rng.choice([16, 64, 100, 256, 1000, 1024, 4096])
    floating = rng.random() < 0.5
    typ = F64 if floating else I64
    on_stack = rng.random() < 0.4 and size <= 4096
    a = array_of(e, module, typ, size, "a", on_stack)
    out = array_of(e, module, typ, size, "b", on_stack)
    b = e.b

    def init(i, _):
        value = b.sitofp(i, F64) if floating else b.mul(i, c64(7))
        b.store(value, element_at(b, a, i))
        return []

    e.loop(c64(0), c64(size), [], init, name="init")

    def sweep(t, _):
        def point(i, __):
            left = b.load(element_at(b, a, b.sub(i, c64(1))))
            mid = b.load(element_at(b, a, i))
            right = b.load(element_at(b, a, b.add(i, c64(1))))
            if floating:
                value = b.fmul(b.fadd(b.fadd(left, mid), right), cf(1.0 / 3.0))
            else:
                value = b.ashr(b.add(b.add(left, b.shl(mid, c64(1))), right), c64(2))
            b.store(value, element_at(b, out, i))
            return []

        e.loop(c64(1), c64(size - 1), [], point, name="pt")

        def copy(i, __):
            b.store(b.load(element_at(b, out, i)), element_at(b, a, i))
            return []

        e.loop(c64(1), c64(size - 1), [], copy, name="cp")
        return []

    e.loop(c64(0), n, [], sweep, name="sweep")

    def total(i, acc):
        value = b.load(element_at(b, a, i))
        return [b.fadd(acc[0], value) if floating else b.add(acc[0], value)]

    (result,) = e.loop(c64(0), c64(size), [cf(0.0) if floating else c64(0)], total, name="sum")
    e.finish(checksum_f64(b, result) if floating else result)
    return module, [max(1, _size(rng, 4, 15) // size)]


def matmul(rng, style):
    module, f = new_module("matmul")
    e = Emitter(f, style)
    n = f.args[0]
    k = rng.choice([4, 8, 12, 16, 24, 32])
    floating = rng.random() < 0.5
    typ = F64 if floating else I64
    a = global_array(module, typ, k * k, "A")
    bm = global_array(module, typ, k * k, "B")
    c = global_array(module, typ, k * k, "C")
    b = e.b

    def init(i, _):
        value = b.srem(b.mul(i, c64(rng.randrange(3, 17))), c64(23))
        b.store(b.sitofp(value, F64) if floating else value, element_at(b, a, i))
        b.store(b.sitofp(i, F64) if floating else b.add(i, c64(1)), element_at(b, bm, i))
        return []

    e.loop(c64(0), c64(k * k), [], init, name="init")

    def rep(_, __):
        def row(i, ___):
            def col(j, ____):
                def dot(p, acc):
                    x = b.load(element_at(b, a, b.add(b.mul(i, c64(k)), p)))
                    y = b.load(element_at(b, bm, b.add(b.mul(p, c64(k)), j)))
                    return [
                        b.fadd(acc[0], b.fmul(x, y)) if floating else b.add(acc[0], b.mul(x, y))
                    ]

                (s,) = e.loop(c64(0), c64(k), [cf(0.0) if floating else c64(0)], dot, name="p")
                b.store(s, element_at(b, c, b.add(b.mul(i, c64(k)), j)))
                return []

            e.loop(c64(0), c64(k), [], col, name="j")
            return []

        e.loop(c64(0), c64(k), [], row, name="i")
        return []

    e.loop(c64(0), n, [], rep, name="rep")
    value = b.load(element_at(b, c, c64(k * k - 1)))
    e.finish(checksum_f64(b, value) if floating else value)
    return module, [max(1, _size(rng, 6, 16) // (k**3))]


def branchy(rng, style):
    module, f = new_module("branchy")
    e = Emitter(f, style)
    n = f.args[0]
    period = rng.choice([2, 3, 7, 16, 64])
    b = e.b

    def body(i, acc):
        cond = b.icmp_signed("==", b.srem(i, c64(period)), c64(0))
        value = e.if_else(
            cond,
            lambda: b.mul(acc[0], c64(3)),
            lambda: b.add(acc[0], b.xor(i, c64(rng.randrange(1, 99)))),
        )
        return [b.and_(value, c64((1 << 40) - 1))]

    (result,) = e.loop(c64(0), n, [c64(7)], body)
    e.finish(result)
    return module, [_size(rng, 3, 16)]


def switchy(rng, style):
    module, f = new_module("switchy")
    e = Emitter(f, style)
    n = f.args[0]
    cases = rng.randint(3, 8)
    b = e.b

    def body(i, acc):
        merge = f.append_basic_block("sw.end")
        default = f.append_basic_block("sw.default")
        start = b.block
        sw = b.switch(b.urem(i, c64(cases + 1)), default)
        incoming = []
        for k in range(cases):
            block = f.append_basic_block(f"sw.case{k}")
            sw.add_case(c64(k), block)
            b.position_at_end(block)
            value = random_int_op(b, random.Random(rng.random()), acc[0], c64(k + 3))
            incoming.append((value, b.block))
            b.branch(merge)
        b.position_at_end(default)
        incoming.append((b.add(acc[0], i), b.block))
        b.branch(merge)
        b.position_at_end(merge)
        phi = b.phi(I64)
        for value, block in incoming:
            phi.add_incoming(value, block)
        del start
        return [phi]

    (result,) = e.loop(c64(0), n, [c64(11)], body)
    e.finish(result)
    return module, [_size(rng, 3, 16)]


def calls(rng, style):
    module, f = new_module("calls")
    helpers = []
    for h in range(rng.randint(1, 3)):
        helper = ir.Function(module, ir.FunctionType(I64, [I64, I64]), name=f"helper{h}")
        helper.linkage = rng.choice(["internal", "external"])
        hb = ir.IRBuilder(helper.append_basic_block("entry"))
        x, y = helper.args
        value = x
        for r in [random.Random(rng.random()) for _ in range(rng.randint(1, 4))]:
            value = random_int_op(hb, r, value, y)
        hb.ret(value)
        helpers.append(helper)
    e = Emitter(f, style)
    b = e.b

    def body(i, acc):
        value = acc[0]
        for helper in helpers:
            value = b.call(helper, [value, i])
        return [value]

    (result,) = e.loop(c64(0), f.args[0], [c64(5)], body)
    e.finish(result)
    return module, [_size(rng, 3, 16)]


def recursion(rng, style):
    module, f = new_module("recursion")
    fib = ir.Function(module, ir.FunctionType(I64, [I64]), name="rec")
    fib.linkage = "internal"
    fb = ir.IRBuilder(fib.append_basic_block("entry"))
    base = fib.append_basic_block("base")
    step = fib.append_basic_block("step")
    (x,) = fib.args
    fb.cbranch(fb.icmp_signed("<", x, c64(2)), base, step)
    fb.position_at_end(base)
    fb.ret(x)
    fb.position_at_end(step)
    kind = rng.choice(["fib", "sum", "tri"])
    if kind == "fib":
        value = fb.add(fb.call(fib, [fb.sub(x, c64(1))]), fb.call(fib, [fb.sub(x, c64(2))]))
    elif kind == "sum":
        value = fb.add(x, fb.call(fib, [fb.sub(x, c64(1))]))
    else:
        value = fb.xor(fb.mul(x, c64(3)), fb.call(fib, [fb.sub(x, c64(1))]))
    fb.ret(value)
    e = Emitter(f, style)
    b = e.b
    depth = rng.randint(10, 20) if kind == "fib" else rng.randint(50, 2000)

    def body(i, acc):
        return [b.add(acc[0], b.call(fib, [b.add(c64(depth), b.urem(i, c64(3)))]))]

    (result,) = e.loop(c64(0), f.args[0], [c64(0)], body)
    e.finish(result)
    cost = 1.618**depth if kind == "fib" else depth
    return module, [max(1, int(_size(rng, 8, 17) / cost))]


def float_math(rng, style):
    module, f = new_module("float_math")
    e = Emitter(f, style)
    b = e.b
    kind = rng.choice(["poly", "newton", "series"])
    coefficients = [rng.uniform(-2, 2) for _ in range(rng.randint(2, 8))]

    def body(i, acc):
        x = b.fdiv(b.sitofp(i, F64), cf(1000.0))
        if kind == "poly":
            value = cf(coefficients[0])
            for c in coefficients[1:]:
                value = b.fadd(b.fmul(value, x), cf(c))
        elif kind == "newton":
            value = b.fadd(x, cf(1.0))
            target = value
            for _ in range(rng.randint(2, 5)):
                value = b.fmul(cf(0.5), b.fadd(value, b.fdiv(target, value)))
        else:
            value = b.fdiv(cf(1.0), b.fadd(b.fmul(x, x), cf(1.0)))
        return [b.fadd(acc[0], value)]

    (result,) = e.loop(c64(0), f.args[0], [cf(0.0)], body)
    e.finish(checksum_f64(b, result))
    return module, [_size(rng, 3, 16)]


def memory_pattern(rng, style):
    module, f = new_module("memory_pattern")
    e = Emitter(f, style)
    b = e.b
    size = rng.choice([64, 256, 1024, 4096, 16384])
    kind = rng.choice(["stride", "reverse", "gather"])
    stride = rng.choice([1, 2, 3, 8, 17])
    data = global_array(module, I64, size, "data")
    index = global_array(module, I64, size, "index")

    def init(i, _):
        b.store(b.xor(i, c64(0x5A5A)), element_at(b, data, i))
        b.store(b.urem(b.mul(i, c64(2654435761)), c64(size)), element_at(b, index, i))
        return []

    e.loop(c64(0), c64(size), [], init, name="init")

    def rep(_, acc):
        def visit(i, inner):
            if kind == "stride":
                where = b.urem(b.mul(i, c64(stride)), c64(size))
            elif kind == "reverse":
                where = b.sub(c64(size - 1), i)
            else:
                where = b.load(element_at(b, index, i))
            return [b.add(inner[0], b.load(element_at(b, data, where)))]

        return e.loop(c64(0), c64(size), acc, visit, name="visit")

    (result,) = e.loop(c64(0), f.args[0], [c64(0)], rep, name="rep")
    e.finish(result)
    return module, [max(1, _size(rng, 6, 17) // size)]


def prefix_sum(rng, style):
    module, f = new_module("prefix_sum")
    e = Emitter(f, style)
    b = e.b
    size = rng.choice([32, 128, 512, 2048, 8192])
    on_stack = rng.random() < 0.5
    data = array_of(e, module, I64, size, "data", on_stack)

    def rep(t, acc):
        def init(i, _):
            b.store(b.add(i, t), element_at(b, data, i))
            return []

        e.loop(c64(0), c64(size), [], init, name="init")

        def scan(i, _):
            previous = b.load(element_at(b, data, b.sub(i, c64(1))))
            current = element_at(b, data, i)
            b.store(b.add(b.load(current), previous), current)
            return []

        e.loop(c64(1), c64(size), [], scan, name="scan")
        return [b.add(acc[0], b.load(element_at(b, data, c64(size - 1))))]

    (result,) = e.loop(c64(0), f.args[0], [c64(0)], rep, name="rep")
    e.finish(result)
    return module, [max(1, _size(rng, 6, 16) // size)]


def data_dependent(rng, style):
    module, f = new_module("data_dependent")
    e = Emitter(f, style)
    b = e.b

    def body(i, acc):
        # Collatz steps of (i + 1), capped: a loop whose trip count depends on data.
        start = b.add(i, c64(1))

        def inner(step, state):
            x = state[0]
            even = b.icmp_unsigned("==", b.and_(x, c64(1)), c64(0))
            half = b.lshr(x, c64(1))
            triple = b.add(b.mul(x, c64(3)), c64(1))
            nxt = b.select(even, half, triple)
            one = b.icmp_unsigned("<=", x, c64(1))
            return [b.select(one, x, nxt), b.add(state[1], b.zext(b.not_(one), I64))]

        x, steps = e.loop(
            c64(0), c64(rng.choice([20, 50, 150])), [start, c64(0)], inner, name="collatz"
        )
        del x
        return [b.add(acc[0], steps)]

    (result,) = e.loop(c64(0), f.args[0], [c64(0)], body)
    e.finish(result)
    return module, [_size(rng, 2, 11)]


FAMILIES = {
    "int_reduction": int_reduction,
    "loop_nest": loop_nest,
    "stencil": stencil,
    "matmul": matmul,
    "branchy": branchy,
    "switchy": switchy,
    "calls": calls,
    "recursion": recursion,
    "float_math": float_math,
    "memory_pattern": memory_pattern,
    "prefix_sum": prefix_sum,
    "data_dependent": data_dependent,
}


def generate_kernel(family: str, seed: int, style: str = "ssa", name: str = "") -> Kernel:
    """Generates one kernel of `family` from `seed`.

    Args:
        family: a key of `FAMILIES`.
        seed: drives every random choice (sizes, types, operations).
        style: "ssa" or "memory".
        name: the kernel's name (default `"{family}_{seed}"`).
    """
    # The style does not enter the seed: both styles of a seed are the same program.
    rng = random.Random(f"{family}:{seed}")
    module, args = FAMILIES[family](rng, style)
    return Kernel(name or f"{family}_{seed}", family, str(module), "entry", args)


def generate_corpus(count: int, seed: int = 0, families=None) -> list:
    """Generates `count` kernels, cycling through the families and both styles.

    Example:

    >>> corpus = generate_corpus(24, seed=1)
    >>> sorted({k.family for k in corpus}) == sorted(FAMILIES)
    True
    """
    names = list(families or FAMILIES)
    rng = random.Random(seed)
    kernels = []
    for k in range(count):
        family = names[k % len(names)]
        style = "memory" if (k // len(names)) % 2 else "ssa"
        if rng.random() < 0.3:
            style = "memory" if style == "ssa" else "ssa"
        kernel_seed = rng.randrange(2**31)
        kernels.append(generate_kernel(family, kernel_seed, style, f"{family}_{k:04d}"))
    return kernels
