"""Hostile LLVM IR for the JIT trust-model tests."""

# Never returns when n > 0 (the loop counter is never incremented).
HANGS = """define i64 @entry(i64 %n) {
entry:
  br label %loop
loop:
  %c = icmp sgt i64 %n, 0
  br i1 %c, label %loop, label %exit
exit:
  ret i64 0
}
"""


def calls_system(marker: str) -> str:
    """IR whose entry runs the shell command `touch <marker>` through libc's system()."""
    command = f"touch {marker}"
    length = len(command) + 1
    return f"""@cmd = private constant [{length} x i8] c"{command}\\00"
declare i32 @system(ptr)
define i64 @entry(i64 %n) {{
entry:
  %r = call i32 @system(ptr @cmd)
  %w = sext i32 %r to i64
  ret i64 %w
}}
"""


# Dereferences address 8: SIGSEGV.
CRASHES = """define i64 @entry(i64 %n) {
entry:
  %p = inttoptr i64 8 to ptr
  %v = load i64, ptr %p
  ret i64 %v
}
"""

INLINE_ASM = """define i64 @entry(i64 %n) {
entry:
  %r = call i64 asm sideeffect "mov $$60, %rax", "={rax}"()
  ret i64 %r
}
"""

USES_SQRT = """declare double @sqrt(double)
define double @entry(double %x) {
entry:
  %r = call double @sqrt(double %x)
  ret double %r
}
"""
