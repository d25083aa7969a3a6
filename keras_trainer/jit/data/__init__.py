"""The JIT family's data: kernels to measure and the measured datasets.

Generated LLVM IR kernels (`corpus`), C kernels compiled with clang
(`c_corpus`), and measuring each kernel under every strategy into a dataset
(`collect`). The bundled datasets live beside these modules in this folder
(`C_KERNELS_PATH`, `SAMPLE_DATASET_PATH`).
"""
