; A nested-loop kernel: entry(n) runs n * n inner steps (adds j in the inner loop, i per outer step).
; Used by the README's `predict --ir` and `jit` examples.
define i64 @entry(i64 %n) {
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
