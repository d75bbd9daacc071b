/**
 * Training kernels for the TensorFlow.js `wasm` backend, laid out as tfjs's own backends are: one file per
 * kernel under kernels/ exporting a KernelConfig, shared heap helpers in internals.ts, the lists and the
 * register functions in register.ts.
 *
 * tfjs-backend-wasm 4.22 cannot train a CNN: it has no Conv2DBackpropFilter,
 * and several of the backward kernels it does have are naive loops that run
 * 3-35x slower than the forward pass. The arithmetic here always runs in the
 * backend's own XNNPACK-backed kernels (BatchMatMul, Conv2D), called the way
 * the wasm backend composes its own kernels: kernelFunc({inputs, backend,
 * attrs}), intermediates released through backend.disposeData. Data
 * movement uses PadV2/Transpose where those are fast, and otherwise plain
 * loops and copies on the wasm heap (as the backend's own Slice and Concat
 * do) plus zero-copy views (see view()).
 *
 * Two facts about the wasm BatchMatMul drive the design (measured, see
 * scripts/bench-wasm-kernels.ts):
 *  - only `!transposeA && !transposeB && batch == 1` reaches XNNPACK; every
 *    other case is a scalar triple loop (~1.2 GFLOP/s);
 *  - XNNPACK re-packs the right operand B for every new B tensor, and that
 *    packing is slow once B outgrows the cache (≈9 ns/element for 12 MB vs
 *    ≈1.2 ns/element for 2 MB), while the left operand A is read in place.
 *    So the big, varying operand goes on the left, B is kept small or reused,
 *    and large reductions are split into cache-sized K-chunks.
 */
export { registerWasmFastOverrides, registerWasmTrainingKernels, unregisterWasmFastOverrides } from './register.js';
export { enableRelaxedSimd, type RelaxedSimdSource } from './gemm/relaxed-simd.js';
export { compileWasmEagerly } from './compile-eagerly.js';
export { gemmBuild, type GemmBuild } from './gemm/gemm.js';
