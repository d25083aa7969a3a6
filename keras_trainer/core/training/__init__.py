"""Training: turning a built model and data into trained weights.

`fit` (the one training loop every family uses), the fused engine that runs many
epochs inside one compiled call (`fused`), training several members at once
(`population`), spreading a batch over devices (`distribution`), shrinking the batch
when memory runs out (`memory`), mixed precision (`precision`), class weights (`class_weights`) and seeds and
deterministic ops (`seeding`, `determinism`).
"""
