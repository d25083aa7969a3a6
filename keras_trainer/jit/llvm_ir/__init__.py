"""LLVM IR: reading a program's IR, measuring it, and writing new IR.

Parsing and verifying IR text (`ir`), measuring a parsed module's structure
(`ir_analysis`), the feature vector of static IR features and runtime metrics
that the model reads (`features`), and structured control flow over
`llvmlite.ir` for generated kernels (`ir_emitter`).
"""
