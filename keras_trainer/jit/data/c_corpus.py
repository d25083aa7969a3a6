"""A seeded corpus of C kernels, compiled to LLVM IR with clang.

Each kernel is a small C program whose entry is `uint64_t entry(int64_t n)`:
`n` is the problem size or repetition count, passed at run time so that no
strategy can fold the work into a constant; the return value is a checksum
(doubles are returned bit for bit through `memcpy`). Kernels come in
`FAMILIES` (vectorizable element-wise loops, reductions, unroll-friendly FIR
filters, branchy loops, recursion, pointer chasing, call-heavy code,
bytecode interpreters, string/byte processing, matrix multiply, sorting,
hashing, stencils, bit manipulation, state machines, scans, bulk libc
calls, histograms, float math, dynamic programming, searching, number
theory, particle updates, transposes, arrays of structs); each family draws
element types, sizes, shapes and operations from the seed, so that
different strategies win on different kernels of the same family.

`compile_c` turns C source into IR the way a JIT front end would: `clang -O0
-emit-llvm` with `-Xclang -disable-O0-optnone` (so the passes can act), then
`clean_ir` drops what pins the code to clang's defaults (`noinline`,
`optnone`, the generic `target-cpu`/`target-features`; the JIT compiles for
the host CPU) and comments/metadata that carry no program meaning. clang is
looked up on `PATH` (or `$CLANG`); nothing is installed at run time.

Example:

>>> kernels = generate_c_corpus(48, seed=0)
>>> kernels[0].family, kernels[0].entry
('elementwise', 'entry')
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence

from keras_trainer.errors import DataError, KerasTrainerError
from keras_trainer.jit.data.corpus import Kernel

CLANG_FLAGS = (
    "-O0",
    "-S",
    "-emit-llvm",
    "-Xclang",
    "-disable-O0-optnone",
    "-ffp-contract=off",
    "-fno-discard-value-names",
    "-w",
)
CLANG_INSTALL_HINT = (
    "install clang (Debian/Ubuntu: `sudo apt-get install -y clang`; Fedora: "
    "`sudo dnf install clang`; macOS: `xcode-select --install`) or set $CLANG to its path"
)

HEADER = """#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>
typedef uint64_t u64; typedef int64_t i64; typedef uint32_t u32; typedef int32_t i32;
typedef uint16_t u16; typedef int16_t i16; typedef uint8_t u8; typedef int8_t i8;
static inline u64 bits_of(double d) { u64 u; memcpy(&u, &d, sizeof u); return u; }
"""


class ClangNotFoundError(KerasTrainerError, RuntimeError):
    """clang is needed to compile C kernels and is not installed."""


def find_clang() -> str:
    """Path of the clang executable (`$CLANG`, else `clang` on `PATH`).

    Raises:
        ClangNotFoundError: with install instructions.
    """
    configured = os.environ.get("CLANG")
    path = shutil.which(configured or "clang")
    if path is None:
        where = (
            f"$CLANG={configured!r} is not an executable" if configured else "clang is not on PATH"
        )
        raise ClangNotFoundError(f"compiling C kernels needs clang: {where}; {CLANG_INSTALL_HINT}")
    return path


_ATTRIBUTE_DROP = re.compile(
    r'\s*(?:\bnoinline\b|\boptnone\b|"(?:target-cpu|target-features|tune-cpu|frame-pointer|'
    r'stack-protector-buffer-size|min-legal-vector-width)"="[^"]*")'
)


def clean_ir(ir_text: str) -> str:
    """clang -O0 IR, made JIT-ready: no `noinline`/`optnone`, no pinned CPU, no comments.

    Removes the module header comment, `source_filename`, `; ...` comments,
    `!llvm.ident`, and from attribute groups `noinline`, `optnone` and the
    target-cpu/features/tune-cpu, frame-pointer, stack-protector and vector-width
    strings. Loop metadata (`!llvm.loop`) and module flags stay.
    """
    lines = []
    for line in ir_text.splitlines():
        stripped = line.strip()
        if (
            stripped.startswith(";")
            or stripped.startswith("source_filename")
            or stripped.startswith("!llvm.ident")
        ):
            continue
        if stripped.startswith("attributes #"):
            line = _ATTRIBUTE_DROP.sub("", line)
        elif ";" in line and not line.lstrip().startswith("@") and '"' not in line:
            line = line.split(";", 1)[0].rstrip()
        lines.append(line)
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def compile_c(
    source: str,
    name: str = "kernel",
    timeout_s: float = 60.0,
    extra_flags: Sequence[str] = (),
) -> str:
    """Compiles C source to clean, unoptimized LLVM IR text with clang.

    Args:
        source: C source text.
        name: used in error messages and as the file name.
        timeout_s: limit for one clang run.
        extra_flags: more clang flags (e.g. `-DSIZE=64`).

    Raises:
        ClangNotFoundError: clang is missing (the message says how to install it).
        DataError: clang rejected the source (its first error lines are quoted).
    """
    clang = find_clang()
    with tempfile.TemporaryDirectory(prefix="kt-clang-") as folder:
        source_path = os.path.join(folder, f"{name}.c")
        output_path = os.path.join(folder, f"{name}.ll")
        with open(source_path, "w") as f:
            f.write(source)
        try:
            process = subprocess.run(
                [clang, *CLANG_FLAGS, *extra_flags, source_path, "-o", output_path],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise DataError(f"{name}.c: clang did not finish within {timeout_s:g} s") from None
        if process.returncode != 0:
            errors = [line for line in process.stderr.splitlines() if "error" in line][:3]
            raise DataError(
                f"{name}.c: clang failed: " + (" | ".join(errors) or process.stderr[-300:])
            )
        with open(output_path) as f:
            return clean_ir(f.read())


# ---------------------------------------------------------------- families
# Each family: rng -> (C source without HEADER, args). `n` in `entry` is the
# run-time size: outer repetitions or element count.

INT_TYPES = ["u8", "u16", "u32", "u64", "i32", "i64"]
FLOAT_TYPES = ["float", "double"]


def _reps(rng, work_per_rep: float) -> int:
    """Repetitions so that the O0 run does about 2**U(11, 18) elementary steps."""
    target = 2 ** rng.uniform(11, 18)
    return max(1, int(target / max(1.0, work_per_rep)))


def _checksum(typ: str, expr: str) -> str:
    return f"bits_of((double)({expr}))" if typ in FLOAT_TYPES else f"(u64)({expr})"


def _init(typ: str, index: str, mul: int, mod: int) -> str:
    value = f"(({index}) * {mul} % {mod})"
    return f"({typ})({value} * 0.25)" if typ in FLOAT_TYPES else f"({typ}){value}"


def elementwise(rng):
    t = rng.choice(INT_TYPES + FLOAT_TYPES * 2)
    size = rng.choice([4, 8, 12, 16, 20, 33, 64, 100, 256, 1000, 4096])
    op = rng.choice(
        [
            "a[i] * k + b[i]",
            "a[i] + b[i]",
            "(a[i] > b[i]) ? a[i] : b[i]",
            "a[i] * a[i] - b[i]",
            "a[i] * k",
        ]
    )
    if t in FLOAT_TYPES:
        k = f"({t}){rng.choice([0.5, 1.5, 3.0])}"
    else:
        k = f"({t}){rng.randint(2, 9)}"
        op = rng.choice([op, "a[i] ^ (b[i] >> 1)", "(a[i] & b[i]) | k"])
    src = f"""
static {t} a[{size}], b[{size}], c[{size}];
u64 entry(i64 n) {{
  const {t} k = {k};
  for (i64 i = 0; i < {size}; i++) {{ a[i] = {_init(t, "i", 7, 101)}; b[i] = {_init(t, "i", 13, 97)}; }}
  for (i64 r = 0; r < n; r++)
    for (i64 i = 0; i < {size}; i++) c[i] = ({t})({op}) + ({t})(r & 1);
  {t} s = 0;
  for (i64 i = 0; i < {size}; i++) s += c[i];
  return {_checksum(t, "s")};
}}"""
    return src, [_reps(rng, size * 3)]


def reduction(rng):
    t = rng.choice(INT_TYPES + FLOAT_TYPES)
    size = rng.choice([8, 16, 24, 64, 100, 512, 1000, 8192])
    kind = rng.choice(["sum", "dot", "max", "xor" if t not in FLOAT_TYPES else "sumsq"])
    expr = {
        "sum": "s += a[i];",
        "dot": "s += a[i] * b[i];",
        "max": "s = a[i] > s ? a[i] : s;",
        "xor": "s ^= a[i];",
        "sumsq": "s += a[i] * a[i];",
    }[kind]
    src = f"""
static {t} a[{size}], b[{size}];
u64 entry(i64 n) {{
  for (i64 i = 0; i < {size}; i++) {{ a[i] = {_init(t, "i", 31, 61)}; b[i] = {_init(t, "i", 5, 17)}; }}
  u64 total = 0;
  for (i64 r = 0; r < n; r++) {{
    {t} s = ({t})r;
    for (i64 i = 0; i < {size}; i++) {{ {expr} }}
    total = total * 31 + {_checksum(t, "s")};
  }}
  return total;
}}"""
    return src, [_reps(rng, size * 2)]


def fir_filter(rng):
    t = rng.choice(["i32", "i64", "float", "double", "i16"])
    taps = rng.choice([2, 3, 4, 5, 7, 8, 16])
    size = rng.choice([32, 64, 200, 1024, 4096])
    coef = ", ".join(str(rng.randint(-4, 5)) for _ in range(taps))
    src = f"""
static {t} x[{size + taps}], y[{size}];
static const {t} c[{taps}] = {{{coef}}};
u64 entry(i64 n) {{
  for (i64 i = 0; i < {size + taps}; i++) x[i] = {_init(t, "i", 11, 23)};
  u64 total = 0;
  for (i64 r = 0; r < n; r++) {{
    for (i64 i = 0; i < {size}; i++) {{
      {t} acc = 0;
      for (int k = 0; k < {taps}; k++) acc += c[k] * x[i + k];
      y[i] = acc;
    }}
    x[r % {size}] += ({t})1;
    total += {_checksum(t, f"y[r % {size}]")};
  }}
  return total;
}}"""
    return src, [_reps(rng, size * taps * 2)]


def branchy(rng):
    size = rng.choice([64, 256, 1000, 4096])
    period = rng.choice(
        [
            "(v & 1)",
            "(v % 3 == 0)",
            "(v > 0x7fffffffu)",
            "((v >> 7) & 1)",
            "(i & 1)",
            "(i % 16 == 0)",
        ]
    )
    then = rng.choice(["s += v >> 3;", "s = s * 3 + v;", "s ^= v; cnt++;", "s += cnt * v;"])
    other = rng.choice(["s -= v & 255;", "s += 1;", "cnt += v & 7;", "s = (s << 1) ^ v;"])
    src = f"""
static u32 data[{size}];
u64 entry(i64 n) {{
  u32 v = 12345u;
  for (i64 i = 0; i < {size}; i++) {{ v = v * 1103515245u + 12345u; data[i] = v; }}
  u64 s = 0, cnt = 0;
  for (i64 r = 0; r < n; r++)
    for (i64 i = 0; i < {size}; i++) {{
      u32 v = data[i] + (u32)r;
      if {period} {{ {then} }} else {{ {other} }}
    }}
  return s + cnt;
}}"""
    return src, [_reps(rng, size * 4)]


def recursion(rng):
    kind = rng.choice(["fib", "tree", "ackermann", "hanoi", "sumdigits", "power"])
    if kind == "fib":
        depth = rng.randint(8, 22)
        body = "static u64 rec(i64 x) { return x < 2 ? (u64)x : rec(x - 1) + rec(x - 2); }"
        work = 1.618**depth
    elif kind == "tree":
        depth = rng.randint(6, 16)
        body = (
            "static u64 rec(i64 x) { if (x <= 0) return 1; "
            "return (rec(x - 1) * 3 + rec(x - 2) + (u64)x) & 0xffffffffu; }"
        )
        work = 1.618**depth
    elif kind == "ackermann":
        depth = rng.randint(2, 6)
        body = (
            "static u64 ack(u64 m, u64 k) { if (m == 0) return k + 1; "
            "if (k == 0) return ack(m - 1, 1); return ack(m - 1, ack(m, k - 1)); }\n"
            "static u64 rec(i64 x) { return ack(2, (u64)x); }"
        )
        work = 2 * depth * depth + 10
    elif kind == "hanoi":
        depth = rng.randint(5, 16)
        body = (
            "static u64 moves(i64 k, int a, int b, int c) { if (k == 0) return 0; "
            "return moves(k - 1, a, c, b) + 1 + moves(k - 1, c, b, a) + (u64)(a ^ c); }\n"
            "static u64 rec(i64 x) { return moves(x, 0, 1, 2); }"
        )
        work = 2**depth
    elif kind == "sumdigits":
        depth = rng.randint(50, 2000)
        body = "static u64 rec(i64 x) { return x <= 0 ? 0 : (u64)(x % 10) + rec(x - 1); }"
        work = depth
    else:
        depth = rng.randint(20, 60)
        body = (
            "static u64 rec(i64 x) { if (x == 0) return 1; u64 h = rec(x / 2); "
            "return (x & 1) ? h * h * 3 : h * h + (u64)x; }"
        )
        work = 8
    src = f"""
{body}
u64 entry(i64 n) {{
  u64 s = 0;
  for (i64 r = 0; r < n; r++) s += rec({depth} + (r % 2));
  return s;
}}"""
    return src, [_reps(rng, work * 6)]


def pointer_chase(rng):
    size = rng.choice([64, 512, 4096, 32768, 131072])
    layout = rng.choice(["random", "sequential", "strided"])
    step = rng.choice([1, 7, 33])
    make = {
        "random": f"""for (i64 i = 0; i < {size}; i++) perm[i] = (u32)i;
  u32 v = 7u; for (i64 i = {size} - 1; i > 0; i--) {{ v = v * 1664525u + 1013904223u;
    u32 j = v % (u32)(i + 1); u32 t = perm[i]; perm[i] = perm[j]; perm[j] = t; }}
  for (i64 i = 0; i < {size}; i++) next[perm[i]] = perm[(i + 1) % {size}];""",
        "sequential": f"for (i64 i = 0; i < {size}; i++) next[i] = (u32)((i + 1) % {size});",
        "strided": f"for (i64 i = 0; i < {size}; i++) next[i] = (u32)((i + {step}) % {size});",
    }[layout]
    payload = rng.choice(["s += p;", "s = s * 31 + p;", "s ^= (u64)p << (p & 7);"])
    src = f"""
static u32 next[{size}], perm[{size}];
u64 entry(i64 n) {{
  {make}
  u64 s = 0; u32 p = 0;
  for (i64 i = 0; i < n; i++) {{ p = next[p]; {payload} }}
  return s + p;
}}"""
    return src, [_reps(rng, 3)]


def call_heavy(rng):
    depth = rng.randint(1, 6)
    fns = []
    for d in range(depth):
        callee = (
            f"f{d + 1}(x ^ {rng.randint(1, 99)}u, y)" if d + 1 < depth else "x * 2654435761u + y"
        )
        op = rng.choice(["+", "^", "-"])
        fns.append(
            f"static u64 f{d}(u64 x, u64 y) {{ return ({callee}) {op} (x >> {rng.randint(1, 9)}); }}"
        )
    variant = rng.choice(["loop", "pointer", "many"])
    if variant == "pointer":
        call = "s = fp(s, (u64)i)"
        pre = "u64 (*volatile fpv)(u64, u64) = f0; u64 (*fp)(u64, u64) = fpv;"
    elif variant == "many":
        call = "s = f0(s, (u64)i) + f0((u64)i, s >> 3)"
        pre = ""
    else:
        call = "s = f0(s, (u64)i)"
        pre = ""
    src = (
        "\n".join(reversed(fns))
        + f"""
u64 entry(i64 n) {{
  {pre}
  u64 s = 1;
  for (i64 i = 0; i < n; i++) {call};
  return s;
}}"""
    )
    return src, [_reps(rng, depth * 6)]


def interpreter(rng):
    length = rng.randint(6, 24)
    ops = []
    for _ in range(length):
        ops.append(rng.choice(["0", "1", "2", "3", "4", "5", "6"]))
    program = ", ".join(ops)
    dispatch = rng.choice(["switch", "table"])
    if dispatch == "switch":
        step = """switch (code[pc]) {
        case 0: acc += reg; break;
        case 1: acc ^= acc >> 3; break;
        case 2: reg = reg * 5 + 1; break;
        case 3: acc -= reg & 15; break;
        case 4: if (acc & 1) reg += acc; break;
        case 5: acc = (acc << 1) | (acc >> 63); break;
        default: reg ^= acc; break;
      }"""
    else:
        step = "acc = table[code[pc]](acc, &reg);"
    table = (
        """
static u64 op0(u64 a, u64 *r) { return a + *r; }
static u64 op1(u64 a, u64 *r) { return a ^ (a >> 3); }
static u64 op2(u64 a, u64 *r) { *r = *r * 5 + 1; return a; }
static u64 op3(u64 a, u64 *r) { return a - (*r & 15); }
static u64 op4(u64 a, u64 *r) { if (a & 1) *r += a; return a; }
static u64 op5(u64 a, u64 *r) { return (a << 1) | (a >> 63); }
static u64 op6(u64 a, u64 *r) { *r ^= a; return a; }
static u64 (*const table[7])(u64, u64 *) = {op0, op1, op2, op3, op4, op5, op6};
"""
        if dispatch == "table"
        else ""
    )
    src = f"""{table}
static const u8 code[{length}] = {{{program}}};
u64 entry(i64 n) {{
  u64 acc = 1, reg = 3;
  for (i64 r = 0; r < n; r++)
    for (int pc = 0; pc < {length}; pc++) {{
      {step}
    }}
  return acc + reg;
}}"""
    return src, [_reps(rng, length * 6)]


def string_ops(rng):
    size = rng.choice([16, 64, 255, 1024, 4000])
    kind = rng.choice(["count", "upper", "strlen", "words", "compare", "reverse"])
    body = {
        "count": "for (i64 i = 0; i < len; i++) s += buf[i] == 'e';",
        "upper": "for (i64 i = 0; i < len; i++) out[i] = (buf[i] >= 'a' && buf[i] <= 'z') ? buf[i] - 32 : buf[i];"
        " s += out[r % len];",
        "strlen": "i64 k = 0; while (buf[k]) k++; s += (u64)k;",
        "words": "int in = 0; for (i64 i = 0; i < len; i++) { int sp = buf[i] == ' '; s += (!sp && !in); in = !sp; }",
        "compare": "i64 k = 0; while (k < len && buf[k] == out[k]) k++; s += (u64)k;",
        "reverse": "for (i64 i = 0; i < len / 2; i++) { u8 t = out[i]; out[i] = out[len - 1 - i]; "
        "out[len - 1 - i] = t; } s += out[0];",
    }[kind]
    src = f"""
static u8 buf[{size + 1}], out[{size + 1}];
u64 entry(i64 n) {{
  const i64 len = {size};
  u32 v = 99u;
  for (i64 i = 0; i < len; i++) {{ v = v * 1103515245u + 12345u; u8 c = (u8)('a' + (v >> 16) % 26);
    buf[i] = ((v >> 8) % 6 == 0) ? ' ' : c; out[i] = buf[i]; }}
  buf[len] = 0; out[len - 1] = '#';
  u64 s = 0;
  for (i64 r = 0; r < n; r++) {{ {body} }}
  return s;
}}"""
    return src, [_reps(rng, size * 3)]


def matmul(rng):
    t = rng.choice(["i32", "i64", "float", "double"])
    k = rng.choice([4, 8, 12, 16, 24, 32, 48])
    order = rng.choice(["ijk", "ikj", "jki"])
    loops = {
        "ijk": ("i", "j", "p"),
        "ikj": ("i", "p", "j"),
        "jki": ("j", "p", "i"),
    }[order]
    src = f"""
static {t} A[{k}][{k}], B[{k}][{k}], C[{k}][{k}];
u64 entry(i64 n) {{
  for (int i = 0; i < {k}; i++) for (int j = 0; j < {k}; j++) {{
    A[i][j] = {_init(t, "i * 3 + j", 7, 13)}; B[i][j] = {_init(t, "i + j * 5", 3, 11)}; }}
  u64 total = 0;
  for (i64 r = 0; r < n; r++) {{
    for (int i = 0; i < {k}; i++) for (int j = 0; j < {k}; j++) C[i][j] = ({t})r;
    for (int {loops[0]} = 0; {loops[0]} < {k}; {loops[0]}++)
      for (int {loops[1]} = 0; {loops[1]} < {k}; {loops[1]}++)
        for (int {loops[2]} = 0; {loops[2]} < {k}; {loops[2]}++)
          C[i][j] += A[i][p] * B[p][j];
    total += {_checksum(t, f"C[r % {k}][{k} - 1]")};
  }}
  return total;
}}"""
    return src, [_reps(rng, k**3 * 2)]


def sorting(rng):
    size = rng.choice([8, 16, 32, 64, 128, 256])
    algo = rng.choice(["insertion", "bubble", "selection", "shell", "qsort"])
    t = rng.choice(["u32", "i64", "u16", "double"])
    body = {
        "insertion": f"for (int i = 1; i < {size}; i++) {{ {t} x = a[i]; int j = i - 1; "
        "while (j >= 0 && a[j] > x) { a[j + 1] = a[j]; j--; } a[j + 1] = x; }",
        "bubble": f"for (int i = 0; i < {size}; i++) for (int j = 0; j + 1 < {size} - i; j++) "
        f"if (a[j] > a[j + 1]) {{ {t} x = a[j]; a[j] = a[j + 1]; a[j + 1] = x; }}",
        "selection": f"for (int i = 0; i < {size}; i++) {{ int m = i; for (int j = i + 1; j < {size}; j++) "
        f"if (a[j] < a[m]) m = j; {t} x = a[i]; a[i] = a[m]; a[m] = x; }}",
        "shell": f"for (int g = {size} / 2; g > 0; g /= 2) for (int i = g; i < {size}; i++) {{ {t} x = a[i]; "
        "int j = i; for (; j >= g && a[j - g] > x; j -= g) a[j] = a[j - g]; a[j] = x; }",
        "qsort": f"qsort(a, {size}, sizeof(a[0]), cmp);",
    }[algo]
    cost = {
        "insertion": size * size / 2,
        "bubble": size * size,
        "selection": size * size,
        "shell": size * 8,
        "qsort": size * 12,
    }[algo]
    src = f"""
static {t} a[{size}];
static int cmp(const void *x, const void *y) {{ {t} p = *(const {t} *)x, q = *(const {t} *)y; return (p > q) - (p < q); }}
u64 entry(i64 n) {{
  u64 s = 0; u32 v = 17u;
  for (i64 r = 0; r < n; r++) {{
    for (int i = 0; i < {size}; i++) {{ v = v * 1664525u + 1013904223u; a[i] = ({t})(v >> 12); }}
    {body}
    s = s * 7 + {_checksum(t, f"a[r % {size}]")};
  }}
  return s;
}}"""
    return src, [_reps(rng, cost * 2)]


def hashing(rng):
    size = rng.choice([16, 100, 1024, 4096])
    kind = rng.choice(["fnv", "djb2", "murmur_mix", "crc32", "adler"])
    body = {
        "fnv": "u64 h = 1469598103934665603ull; for (i64 i = 0; i < len; i++) { h ^= buf[i]; h *= 1099511628211ull; }",
        "djb2": "u64 h = 5381; for (i64 i = 0; i < len; i++) h = h * 33 + buf[i];",
        "murmur_mix": "u64 h = (u64)r; for (i64 i = 0; i < len; i++) { u64 k = buf[i] * 0xff51afd7ed558ccdull;"
        " k ^= k >> 33; h ^= k; h = h * 5 + 0xe6546b64ull; }",
        "crc32": "u32 c = 0xffffffffu; for (i64 i = 0; i < len; i++) { c ^= buf[i]; for (int b = 0; b < 8; b++)"
        " c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1))); } u64 h = ~c;",
        "adler": "u32 x = 1, y = 0; for (i64 i = 0; i < len; i++) { x = (x + buf[i]) % 65521u; y = (y + x) % 65521u; }"
        " u64 h = ((u64)y << 16) | x;",
    }[kind]
    src = f"""
static u8 buf[{size}];
u64 entry(i64 n) {{
  const i64 len = {size};
  for (i64 i = 0; i < len; i++) buf[i] = (u8)(i * 37 + 11);
  u64 s = 0;
  for (i64 r = 0; r < n; r++) {{ buf[r % len] ^= (u8)r; {body} s += h; }}
  return s;
}}"""
    return src, [_reps(rng, size * (16 if kind == "crc32" else 3))]


def stencil(rng):
    t = rng.choice(["i32", "i64", "float", "double"])
    dims = rng.choice([1, 2])
    if dims == 1:
        size = rng.choice([64, 256, 1000, 4096])
        decl = f"static {t} a[{size}], b[{size}];"
        init = f"for (int i = 0; i < {size}; i++) a[i] = {_init(t, 'i', 17, 29)};"
        sweep = (
            f"for (int i = 1; i < {size} - 1; i++) b[i] = (a[i - 1] + a[i] + a[i] + a[i + 1]) / 4;\n"
            f"    for (int i = 1; i < {size} - 1; i++) a[i] = b[i];"
        )
        result = f"a[{size} // 2]".replace("//", "/")
        work = size * 6
    else:
        size = rng.choice([8, 16, 32, 64, 96])
        decl = f"static {t} a[{size}][{size}], b[{size}][{size}];"
        init = f"for (int i = 0; i < {size}; i++) for (int j = 0; j < {size}; j++) a[i][j] = {_init(t, 'i * 7 + j', 5, 31)};"
        sweep = (
            f"for (int i = 1; i < {size} - 1; i++) for (int j = 1; j < {size} - 1; j++)\n"
            f"      b[i][j] = (a[i - 1][j] + a[i + 1][j] + a[i][j - 1] + a[i][j + 1]) / 4;\n"
            f"    for (int i = 1; i < {size} - 1; i++) for (int j = 1; j < {size} - 1; j++) a[i][j] = b[i][j];"
        )
        result = f"a[{size // 2}][{size // 2}]"
        work = size * size * 8
    src = f"""
{decl}
u64 entry(i64 n) {{
  {init}
  for (i64 r = 0; r < n; r++) {{
    {sweep}
  }}
  return {_checksum(t, result)};
}}"""
    return src, [_reps(rng, work)]


def bit_tricks(rng):
    kind = rng.choice(["popcount", "reverse", "parity", "clz", "gray", "pdep"])
    body = {
        "popcount": "u64 x = v; u64 c = 0; while (x) { x &= x - 1; c++; } s += c;",
        "reverse": "u32 x = (u32)v, y = 0; for (int b = 0; b < 32; b++) { y = (y << 1) | (x & 1); x >>= 1; } s += y;",
        "parity": "u64 x = v; int p = 0; for (int b = 0; b < 64; b++) p ^= (x >> b) & 1; s += (u64)p;",
        "clz": "u64 x = v | 1; int z = 0; while (!(x & 0x8000000000000000ull)) { x <<= 1; z++; } s += (u64)z;",
        "gray": "u64 g = v ^ (v >> 1); u64 b = g; for (u64 m = g >> 1; m; m >>= 1) b ^= m; s += b;",
        "pdep": "u64 m = 0x5555555555555555ull ^ (u64)i; u64 x = v, res = 0; for (u64 bb = 1; m; bb += bb) "
        "{ if (x & bb) res |= m & (0 - m); m &= m - 1; } s += res;",
    }[kind]
    src = f"""
u64 entry(i64 n) {{
  u64 s = 0, v = 0x9e3779b97f4a7c15ull;
  for (i64 i = 0; i < n; i++) {{ v = v * 6364136223846793005ull + 1442695040888963407ull; {body} }}
  return s;
}}"""
    return src, [_reps(rng, 60)]


def state_machine(rng):
    states = rng.randint(3, 8)
    size = rng.choice([64, 500, 2048])
    style = rng.choice(["table", "switch"])
    table = ", ".join(str(rng.randrange(states)) for _ in range(states * 4))
    if style == "table":
        step = f"st = trans[st * 4 + (buf[i] & 3)]; s += st == {states - 1};"
    else:
        cases = "\n".join(
            f"        case {k}: st = (buf[i] & {1 + k % 3}) ? {rng.randrange(states)} : {rng.randrange(states)}; "
            f"s += {k}; break;"
            for k in range(states)
        )
        step = f"switch (st) {{\n{cases}\n        default: st = 0;\n      }}"
    src = f"""
static const u8 trans[{states * 4}] = {{{table}}};
static u8 buf[{size}];
u64 entry(i64 n) {{
  u32 v = 5u;
  for (int i = 0; i < {size}; i++) {{ v = v * 1103515245u + 12345u; buf[i] = (u8)(v >> 16); }}
  u64 s = 0; int st = 0;
  for (i64 r = 0; r < n; r++)
    for (int i = 0; i < {size}; i++) {{
      {step}
    }}
  return s * 16 + (u64)st;
}}"""
    return src, [_reps(rng, size * 6)]


def prefix_scan(rng):
    t = rng.choice(["i32", "i64", "u16", "double"])
    size = rng.choice([32, 256, 1024, 8192])
    kind = rng.choice(["inclusive", "running_max", "difference"])
    body = {
        "inclusive": f"for (int i = 1; i < {size}; i++) a[i] += a[i - 1];",
        "running_max": f"for (int i = 1; i < {size}; i++) a[i] = a[i] > a[i - 1] ? a[i] : a[i - 1];",
        "difference": f"for (int i = {size} - 1; i > 0; i--) a[i] -= a[i - 1];",
    }[kind]
    src = f"""
static {t} a[{size}];
u64 entry(i64 n) {{
  u64 s = 0;
  for (i64 r = 0; r < n; r++) {{
    for (int i = 0; i < {size}; i++) a[i] = {_init(t, "i + r", 3, 7)};
    {body}
    s += {_checksum(t, f"a[{size} - 1]")};
  }}
  return s;
}}"""
    return src, [_reps(rng, size * 3)]


def libc_bulk(rng):
    size = rng.choice([16384, 65536, 262144, 1048576])
    kind = rng.choice(["memset", "memcpy", "memmove", "memcmp", "mixed"])
    body = {
        "memset": f"memset(buf, (int)(r & 255), {size});",
        "memcpy": f"memcpy(dst, buf, {size});",
        "memmove": f"memmove(buf + 1, buf, {size} - 1);",
        "memcmp": f"s += (u64)(memcmp(buf, dst, {size}) != 0);",
        "mixed": f"memcpy(dst, buf, {size}); memset(buf, (int)r, {size} / 2);",
    }[kind]
    src = f"""
static u8 buf[{size}], dst[{size}];
u64 entry(i64 n) {{
  memset(buf, 7, {size}); memset(dst, 7, {size});
  u64 s = 0;
  for (i64 r = 0; r < n; r++) {{ {body} s += buf[r % {size}] + dst[(r * 7) % {size}]; }}
  return s;
}}"""
    return src, [max(1, _reps(rng, size / 8) // 4)]


def histogram(rng):
    bins = rng.choice([4, 16, 64, 256])
    size = rng.choice([100, 1000, 4096])
    key = rng.choice(
        [
            "data[i] % BINS",
            "(data[i] >> 5) % BINS",
            "(data[i] * 2654435761u) >> (32 - LOG)",
        ]
    )
    log = bins.bit_length() - 1
    key = key.replace("BINS", str(bins)).replace("LOG", str(log))
    src = f"""
static u32 data[{size}], hist[{bins}];
u64 entry(i64 n) {{
  u32 v = 3u;
  for (int i = 0; i < {size}; i++) {{ v = v * 1664525u + 1013904223u; data[i] = v >> 8; }}
  memset(hist, 0, sizeof hist);
  for (i64 r = 0; r < n; r++)
    for (int i = 0; i < {size}; i++) hist[{key}] += 1 + (u32)(r & 1);
  u64 s = 0;
  for (int b = 0; b < {bins}; b++) s = s * 31 + hist[b];
  return s;
}}"""
    return src, [_reps(rng, size * 4)]


def float_math(rng):
    t = rng.choice(FLOAT_TYPES)
    kind = rng.choice(["horner", "newton", "series", "mandel", "integrate"])
    coefficients = ", ".join(f"{rng.uniform(-2, 2):.4f}" for _ in range(rng.randint(3, 9)))
    body = {
        "horner": "const "
        + t
        + " c[] = {"
        + coefficients
        + "}; "
        + t
        + " y = 0; for (unsigned k = 0; k < sizeof c / sizeof c[0]; k++) y = y * x + c[k]; s += y;",
        "newton": f"{t} g = x + 1; for (int k = 0; k < {rng.randint(2, 8)}; k++) g = ({t})0.5 * (g + (x + 1) / g); s += g;",
        "series": f"{t} term = 1, sum = 0; for (int k = 1; k < {rng.randint(4, 20)}; k++) {{ term = term * x / k; sum += term; }} s += sum;",
        "mandel": f"{t} zr = 0, zi = 0; int k = 0; while (k < {rng.randint(8, 64)} && zr * zr + zi * zi < 4) "
        f"{{ {t} tr = zr * zr - zi * zi + x - 1; zi = 2 * zr * zi + ({t})0.3; zr = tr; k++; }} s += k;",
        "integrate": f"s += ({t})1 / (1 + x * x);",
    }[kind]
    src = f"""
u64 entry(i64 n) {{
  {t} s = 0;
  for (i64 i = 0; i < n; i++) {{ {t} x = ({t})(i % 1000) / ({t})700; {body} }}
  return bits_of((double)s);
}}"""
    return src, [
        _reps(
            rng,
            {"horner": 20, "newton": 20, "series": 30, "mandel": 80, "integrate": 5}[kind],
        )
    ]


def dynamic_programming(rng):
    kind = rng.choice(["lcs", "edit", "knapsack", "lis"])
    size = rng.choice([8, 16, 32, 64, 128])
    body = {
        "lcs": f"""for (int i = 1; i <= {size}; i++) for (int j = 1; j <= {size}; j++)
        T[i][j] = x[i - 1] == y[j - 1] ? T[i - 1][j - 1] + 1 : (T[i - 1][j] > T[i][j - 1] ? T[i - 1][j] : T[i][j - 1]);""",
        "edit": f"""for (int i = 0; i <= {size}; i++) T[i][0] = i; for (int j = 0; j <= {size}; j++) T[0][j] = j;
      for (int i = 1; i <= {size}; i++) for (int j = 1; j <= {size}; j++) {{
        u32 a = T[i - 1][j] + 1, b = T[i][j - 1] + 1, c = T[i - 1][j - 1] + (x[i - 1] != y[j - 1]);
        T[i][j] = a < b ? (a < c ? a : c) : (b < c ? b : c); }}""",
        "knapsack": f"""for (int j = 0; j <= {size}; j++) T[0][j] = 0;
      for (int i = 1; i <= {size}; i++) for (int j = 0; j <= {size}; j++) {{
        u32 w = x[i - 1] % 7 + 1, keep = T[i - 1][j];
        T[i][j] = (j >= (int)w && T[i - 1][j - w] + y[i - 1] > keep) ? T[i - 1][j - w] + y[i - 1] : keep; }}""",
        "lis": f"""for (int i = 0; i < {size}; i++) {{ T[0][i] = 1; for (int j = 0; j < i; j++)
        if (x[j] < x[i] && T[0][j] + 1 > T[0][i]) T[0][i] = T[0][j] + 1; }} T[{size}][{size}] = T[0][{size} - 1];""",
    }[kind]
    src = f"""
static u32 T[{size + 1}][{size + 1}];
static u8 x[{size}], y[{size}];
u64 entry(i64 n) {{
  u64 s = 0; u32 v = 11u;
  for (i64 r = 0; r < n; r++) {{
    for (int i = 0; i < {size}; i++) {{ v = v * 1103515245u + 12345u; x[i] = (u8)((v >> 16) % 4); y[i] = (u8)((v >> 20) % 4); }}
    {body}
    s += T[{size}][{size}];
  }}
  return s;
}}"""
    return src, [_reps(rng, size * size * 5)]


def search(rng):
    size = rng.choice([16, 128, 1024, 16384])
    kind = rng.choice(["binary", "linear", "branchless_binary"])
    body = {
        "binary": f"int lo = 0, hi = {size}; while (lo < hi) {{ int mid = (lo + hi) / 2; if (a[mid] < key) lo = mid + 1; else hi = mid; }} s += (u64)lo;",
        "linear": f"int k = 0; while (k < {size} && a[k] < key) k++; s += (u64)k;",
        "branchless_binary": f"const u32 *base = a; int len = {size}; while (len > 1) {{ int half = len / 2; "
        "base = (base[half] < key) ? base + half : base; len -= half; } s += (u64)(base - a);",
    }[kind]
    cost = {
        "binary": 4 * size.bit_length(),
        "linear": size,
        "branchless_binary": 4 * size.bit_length(),
    }[kind]
    src = f"""
static u32 a[{size}];
u64 entry(i64 n) {{
  for (int i = 0; i < {size}; i++) a[i] = (u32)i * 3u + 1u;
  u64 s = 0; u32 v = 1u;
  for (i64 r = 0; r < n; r++) {{ v = v * 1664525u + 1013904223u; u32 key = v % ({size}u * 3u); {body} }}
  return s;
}}"""
    return src, [_reps(rng, cost * 2)]


def number_theory(rng):
    kind = rng.choice(["gcd", "modpow", "sieve", "collatz", "isprime"])
    size = rng.choice([100, 1000, 10000])
    body = {
        "gcd": "u64 a = (u64)i * 7919 + 1, b = (u64)i * 104729 + 3; while (b) { u64 t = a % b; a = b; b = t; } s += a;",
        "modpow": "u64 base = (u64)i + 2, e = 65537, m = 1000000007ull, res = 1; while (e) { if (e & 1) res = res * base % m; base = base * base % m; e >>= 1; } s += res;",
        "sieve": f"memset(comp, 0, sizeof comp); for (int p = 2; p * p < {size}; p++) if (!comp[p]) for (int q = p * p; q < {size}; q += p) comp[q] = 1; "
        f"for (int p = 2; p < {size}; p++) s += !comp[p];",
        "collatz": "u64 x = (u64)i + 1; while (x != 1) { x = (x & 1) ? 3 * x + 1 : x / 2; s++; }",
        "isprime": "u64 x = (u64)i * 2 + 1; int pr = x > 1; for (u64 d = 3; d * d <= x; d += 2) if (x % d == 0) { pr = 0; break; } s += (u64)pr;",
    }[kind]
    cost = {"gcd": 60, "modpow": 100, "sieve": size * 3, "collatz": 200, "isprime": 60}[kind]
    src = f"""
static u8 comp[{size}];
u64 entry(i64 n) {{
  u64 s = 0;
  for (i64 i = 0; i < n; i++) {{ {body} }}
  return s;
}}"""
    return src, [_reps(rng, cost)]


def particles(rng):
    t = rng.choice(FLOAT_TYPES + ["i32"])
    size = rng.choice([8, 12, 16, 24, 64, 256, 1024])
    update = rng.choice(
        [
            "x[i] += v[i] * dt; v[i] -= x[i] * dt;",
            "x[i] += v[i] * dt; if (x[i] > lim) { x[i] = lim; v[i] = -v[i]; }",
            "v[i] = v[i] * damp + f[i]; x[i] += v[i];",
        ]
    )
    consts = (
        {"dt": "(T)1 / 16", "lim": "(T)100", "damp": "(T)3 / 4"}
        if t != "i32"
        else {"dt": "(T)1", "lim": "(T)100000", "damp": "(T)1"}
    )
    src = f"""
static {t} x[{size}], v[{size}], f[{size}];
u64 entry(i64 n) {{
  const {t} dt = {consts["dt"]}, lim = {consts["lim"]}, damp = {consts["damp"]};
  for (int i = 0; i < {size}; i++) {{ x[i] = {_init(t, "i", 3, 19)}; v[i] = {_init(t, "i", 7, 5)}; f[i] = ({t})(i & 3); }}
  for (i64 r = 0; r < n; r++)
    for (int i = 0; i < {size}; i++) {{ {update} }}
  {t} s = 0;
  for (int i = 0; i < {size}; i++) s += x[i] + v[i];
  return {_checksum(t, "s")};
}}""".replace("(T)", f"({t})")
    return src, [_reps(rng, size * 6)]


def transpose(rng):
    t = rng.choice(["u8", "u32", "u64", "double"])
    size = rng.choice([8, 16, 32, 64, 128, 256])
    kind = rng.choice(["naive", "blocked", "add_transposed"])
    body = {
        "naive": f"for (int i = 0; i < {size}; i++) for (int j = 0; j < {size}; j++) B[j][i] = A[i][j];",
        "blocked": f"for (int ii = 0; ii < {size}; ii += 8) for (int jj = 0; jj < {size}; jj += 8) "
        "for (int i = ii; i < ii + 8; i++) for (int j = jj; j < jj + 8; j++) B[j][i] = A[i][j];",
        "add_transposed": f"for (int i = 0; i < {size}; i++) for (int j = 0; j < {size}; j++) B[i][j] = A[i][j] + A[j][i];",
    }[kind]
    src = f"""
static {t} A[{size}][{size}], B[{size}][{size}];
u64 entry(i64 n) {{
  for (int i = 0; i < {size}; i++) for (int j = 0; j < {size}; j++) A[i][j] = {_init(t, "i * 5 + j", 3, 29)};
  u64 s = 0;
  for (i64 r = 0; r < n; r++) {{ {body} A[r % {size}][0] += ({t})1; s += {_checksum(t, f"B[1][r % {size}]")}; }}
  return s;
}}"""
    return src, [_reps(rng, size * size * 3)]


def struct_ops(rng):
    size = rng.choice([16, 100, 512, 2048])
    kind = rng.choice(["update", "filter_sum", "argmax"])
    body = {
        "update": f"for (int i = 0; i < {size}; i++) {{ items[i].pos += items[i].vel; items[i].hits += items[i].pos > 1000; }}",
        "filter_sum": f"for (int i = 0; i < {size}; i++) if (items[i].kind == (u8)(r & 3)) s += (u64)items[i].pos;",
        "argmax": f"int m = 0; for (int i = 1; i < {size}; i++) if (items[i].pos > items[m].pos) m = i; s += (u64)m; items[m].pos -= 7;",
    }[kind]
    src = f"""
struct item {{ i32 pos; i32 vel; u8 kind; u16 hits; }};
static struct item items[{size}];
u64 entry(i64 n) {{
  for (int i = 0; i < {size}; i++) {{ items[i].pos = (i * 37) % 1013; items[i].vel = i % 5 - 2; items[i].kind = (u8)(i % 4); items[i].hits = 0; }}
  u64 s = 0;
  for (i64 r = 0; r < n; r++) {{ {body} }}
  for (int i = 0; i < {size}; i++) s += (u64)items[i].pos + items[i].hits;
  return s;
}}"""
    return src, [_reps(rng, size * 4)]


def tiny_kernel(rng):
    """Short functions called once: the ctypes call dominates, no strategy pays off."""
    kind = rng.choice(["arith", "clamp", "loop", "select"])
    body = {
        "arith": "u64 x = (u64)n; return (x * 2654435761u) ^ (x >> 7);",
        "clamp": "i64 x = n * 3 - 50; return (u64)(x < 0 ? 0 : (x > 100 ? 100 : x));",
        "loop": f"u64 s = 0; for (i64 i = 0; i < n; i++) s += (u64)i * {rng.randint(2, 9)}; return s;",
        "select": "return n & 1 ? (u64)n * 3 + 1 : (u64)n / 2;",
    }[kind]
    src = f"u64 entry(i64 n) {{ {body} }}"
    return src, [rng.randint(1, 40)]


def short_loops(rng):
    """Many loops with short, data-dependent trip counts: vector code rarely runs."""
    t = rng.choice(["u8", "i32", "i64", "float", "double"])
    groups = rng.choice([32, 128, 512])
    longest = rng.choice([3, 4, 7, 8, 12])
    op = rng.choice(
        [
            "out[b + k] = in[b + k] * 3 + 1;",
            "out[b + k] += in[b + k];",
            "out[b + k] = in[b + k] > out[b + k] ? in[b + k] : out[b + k];",
        ]
    )
    src = f"""
static {t} in[{groups * longest}], out[{groups * longest}];
static u8 len[{groups}];
u64 entry(i64 n) {{
  u32 v = 21u;
  for (int i = 0; i < {groups}; i++) {{ v = v * 1664525u + 1013904223u; len[i] = (u8)((v >> 16) % {longest + 1}); }}
  for (int i = 0; i < {groups * longest}; i++) {{ in[i] = {_init(t, "i", 5, 37)}; out[i] = 0; }}
  for (i64 r = 0; r < n; r++)
    for (int g = 0; g < {groups}; g++) {{
      const int b = g * {longest};
      for (int k = 0; k < len[g]; k++) {op}
    }}
  {t} s = 0;
  for (int i = 0; i < {groups * longest}; i++) s += out[i];
  return {_checksum(t, "s")};
}}"""
    return src, [_reps(rng, groups * longest * 2)]


def libm_calls(rng):
    """Loops dominated by C math library calls: the optimizer has little to win."""
    calls = rng.sample(
        [
            "sin(x)",
            "cos(x)",
            "exp(x * 0.01)",
            "log(x + 1.0)",
            "atan(x)",
            "cbrt(x)",
            "tanh(x * 0.1)",
            "pow(x, 0.3)",
        ],
        rng.randint(1, 3),
    )
    extra = rng.choice(["", " s = s * 0.999 + x;", " if (x > 50.0) s -= 1.0;"])
    src = f"""
u64 entry(i64 n) {{
  double s = 0;
  for (i64 i = 0; i < n; i++) {{
    double x = (double)(i % 997) * 0.1;
    s += {" + ".join(calls)};{extra}
  }}
  return bits_of(s);
}}"""
    return src, [_reps(rng, 25 * len(calls))]


FAMILIES: dict[str, Callable] = {
    "elementwise": elementwise,
    "reduction": reduction,
    "fir_filter": fir_filter,
    "branchy": branchy,
    "recursion": recursion,
    "pointer_chase": pointer_chase,
    "call_heavy": call_heavy,
    "interpreter": interpreter,
    "string_ops": string_ops,
    "matmul": matmul,
    "sorting": sorting,
    "hashing": hashing,
    "stencil": stencil,
    "bit_tricks": bit_tricks,
    "state_machine": state_machine,
    "prefix_scan": prefix_scan,
    "libc_bulk": libc_bulk,
    "histogram": histogram,
    "float_math": float_math,
    "dynamic_programming": dynamic_programming,
    "search": search,
    "number_theory": number_theory,
    "particles": particles,
    "transpose": transpose,
    "struct_ops": struct_ops,
    "tiny_kernel": tiny_kernel,
    "short_loops": short_loops,
    "libm_calls": libm_calls,
}


# How often `generate_c_corpus` draws each family per cycle (default 1), set
# from the labels of a first 550-kernel collection: families where the
# vectorizing pipelines win more than 60 % of the kernels come once, mixed
# families twice, and those where O1, O0 or the scalar pipeline win most come
# four times, so that no strategy labels more than 45 % of the corpus.
FAMILY_WEIGHTS: dict[str, int] = {
    **{
        name: 2
        for name in (
            "bit_tricks",
            "dynamic_programming",
            "float_math",
            "interpreter",
            "number_theory",
            "pointer_chase",
            "search",
            "short_loops",
            "stencil",
            "string_ops",
            "transpose",
        )
    },
    **{
        name: 4
        for name in (
            "call_heavy",
            "libc_bulk",
            "libm_calls",
            "recursion",
            "sorting",
            "struct_ops",
            "tiny_kernel",
        )
    },
}


def c_kernel_source(family: str, seed: int) -> tuple[str, list]:
    """The C source (with the common header) and entry arguments of one kernel."""
    if family not in FAMILIES:
        raise DataError(f"unknown C kernel family {family!r}; choose one of {sorted(FAMILIES)}")
    rng = random.Random(f"c:{family}:{seed}")
    body, args = FAMILIES[family](rng)
    return HEADER + body + "\n", args


def generate_c_kernel(family: str, seed: int, name: str = "") -> Kernel:
    """Generates and compiles one C kernel of `family` (see `FAMILIES`)."""
    source, args = c_kernel_source(family, seed)
    name = name or f"{family}_{seed}"
    return Kernel(name, family, compile_c(source, name), "entry", args)


def generate_c_corpus(
    count: int, seed: int = 0, families: Sequence[str] | None = None, workers: int = 1
) -> list:
    """Generates and compiles `count` C kernels, cycling through the families.

    Args:
        count: number of kernels.
        seed: drives every kernel's seed.
        families: family names to cycle through (default: every family, each
            `FAMILY_WEIGHTS` times per cycle).
        workers: clang processes run at once.

    Raises:
        ClangNotFoundError: clang is not installed.
    """
    import concurrent.futures

    names = (
        list(families)
        if families
        else [name for name in FAMILIES for _ in range(FAMILY_WEIGHTS.get(name, 1))]
    )
    rng = random.Random(seed)
    jobs = [
        (
            names[k % len(names)],
            rng.randrange(2**31),
            f"{names[k % len(names)]}_{k:04d}",
        )
        for k in range(count)
    ]
    find_clang()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda job: generate_c_kernel(*job), jobs))
