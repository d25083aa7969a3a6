"""Hand-written LLVM IR snippets whose feature values are known exactly."""

STRAIGHT = """define i64 @entry(i64 %n) {
entry:
  %a = add i64 %n, 1
  %b = mul i64 %a, 3
  ret i64 %b
}
"""

# entry -> loop, loop -> loop (back edge), loop -> exit: 3 blocks, 3 edges, 1 loop.
ONE_LOOP = """define i64 @entry(i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i2, %loop]
  %s = phi i64 [0, %entry], [%s2, %loop]
  %s2 = add i64 %s, %i
  %i2 = add i64 %i, 1
  %c = icmp slt i64 %i2, %n
  br i1 %c, label %loop, label %exit
exit:
  ret i64 %s2
}
"""

# Two loops, one inside the other: 5 blocks, 6 edges, depth 2.
NESTED_LOOP = """define i64 @entry(i64 %n) {
entry:
  br label %outer
outer:
  %i = phi i64 [0, %entry], [%i2, %latch]
  %acc = phi i64 [0, %entry], [%acc2, %latch]
  br label %inner
inner:
  %j = phi i64 [0, %outer], [%j2, %inner]
  %a = phi i64 [%acc, %outer], [%a2, %inner]
  %a2 = add i64 %a, %j
  %j2 = add i64 %j, 1
  %cj = icmp slt i64 %j2, %n
  br i1 %cj, label %inner, label %latch
latch:
  %acc2 = add i64 %a2, %i
  %i2 = add i64 %i, 1
  %ci = icmp slt i64 %i2, %n
  br i1 %ci, label %outer, label %exit
exit:
  ret i64 %acc2
}
"""

# Two loops one after the other: 2 loops, depth 1.
SEQUENTIAL_LOOPS = """define i64 @entry(i64 %n) {
entry:
  br label %first
first:
  %i = phi i64 [0, %entry], [%i2, %first]
  %i2 = add i64 %i, 1
  %c1 = icmp slt i64 %i2, %n
  br i1 %c1, label %first, label %second
second:
  %j = phi i64 [0, %first], [%j2, %second]
  %j2 = add i64 %j, 2
  %c2 = icmp slt i64 %j2, %n
  br i1 %c2, label %second, label %exit
exit:
  %r = add i64 %i2, %j2
  ret i64 %r
}
"""

# if/else diamond with memory, floats, casts and a call to a second function.
DIAMOND = """declare double @llvm.sqrt.f64(double)

define double @square(double %x) {
entry:
  %y = fmul double %x, %x
  ret double %y
}

define i64 @entry(i64 %n) {
entry:
  %slot = alloca [4 x i64]
  %p = getelementptr [4 x i64], ptr %slot, i64 0, i64 1
  store i64 %n, ptr %p
  %v = load i64, ptr %p
  %c = icmp sgt i64 %v, 10
  br i1 %c, label %then, label %else
then:
  %f = sitofp i64 %v to double
  %sq = call double @square(double %f)
  %r1 = fptosi double %sq to i64
  br label %end
else:
  %r2 = sub i64 0, %v
  br label %end
end:
  %r = phi i64 [%r1, %then], [%r2, %else]
  ret i64 %r
}
"""

SWITCH = """define i64 @entry(i64 %n) {
entry:
  switch i64 %n, label %other [ i64 0, label %zero
                                i64 1, label %one ]
zero:
  ret i64 10
one:
  ret i64 20
other:
  ret i64 30
}
"""
