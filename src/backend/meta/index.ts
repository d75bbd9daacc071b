/**
 * A `meta` backend for TensorFlow.js, in the spirit of PyTorch's meta tensors: tensors carry a shape
 * and a dtype but no values, and kernels only compute output shapes and dtypes. A training step of a
 * large-batch DenseNet therefore runs in well under a second to tens of seconds, while `tf.memory()`
 * and `tf.profile()` report what the real backend would report for the same program.
 *
 * The time that remains is spent where tfjs-core builds values in JavaScript before any backend sees
 * them, and no backend can avoid that: tf.zeros/tf.ones/random ops, the `ones(x.shape)` inside Mean's
 * gradient, and the tape's zeros for outputs without a gradient. Prefer `tf.fill` (a kernel, so free
 * here) for large inputs of a planning run.
 *
 * Exactness rests on three facts about tfjs-core's engine (engine.js in tfjs-core 4.22):
 * - `numBytes` and `numTensors` are counted per tensor (`size * bytesPerElement(dtype)` when a tensor
 *   is tracked or disposed), so every kernel has to produce the same output shapes and dtypes as the
 *   real kernel; bool (1 byte) against int32/float32 (4 bytes) is where a wrong dtype shows in bytes.
 * - `numDataBuffers` is counted per data id, and a tensor stops being accounted once the backend's
 *   `disposeData` reports its data freed. So each kernel must alias its input's data exactly where the
 *   real kernel does (incRef + same dataId), and refCount/disposeData must follow the cpu backend.
 * - `peakBytes` is the maximum of `numBytes` snapshots taken after each kernel; allocations inside a
 *   kernel never show there, so kernels need not model their temporaries.
 *
 * cpu and wasm kernels differ in both aliasing and dtypes, so the backend comes in two flavours:
 * 'meta' mirrors `cpu`, 'meta-wasm' mirrors `wasm`. Differences found in the 4.22 kernels:
 * - Identity: cpu aliases the input, wasm copies. This matters more than it looks: the engine clones
 *   (Identity) every tensor it saves for backprop, and concat/broadcastTo of a single/no-op input clone.
 * - Cast: cpu aliases when the cast loses nothing (same dtype, bool->int32/float32, int32->float32),
 *   wasm always copies.
 * - Concat with one non-empty input, MaxPool/AvgPool with a 1x1 window that keeps the shape, Reverse
 *   of a scalar: cpu aliases, wasm copies.
 * - Reshape, ExpandDims, StridedSlice that is an identity, Pack of one tensor: both alias.
 * - dtypes: wasm Conv2D/FusedConv2D/MaxPool/AvgPool/ResizeBilinear/ResizeNearestNeighbor(+Grad) give
 *   float32, cpu keeps x.dtype (ResizeNearestNeighbor: images.dtype); MaxPoolGrad/AvgPoolGrad: cpu
 *   float32, wasm input.dtype; Sum/Prod of int32-or-bool: cpu upcasts bool to int32, wasm keeps the
 *   input dtype; Select: cpu upcastType(t, e), wasm t.dtype; FloorDiv: cpu int32, wasm a.dtype;
 *   LogicalNot: cpu bool, wasm x.dtype; Expm1: cpu x.dtype, wasm float32; Softmax: cpu float32, wasm
 *   logits.dtype; a strided (non-contiguous) StridedSlice on wasm always yields float32.
 * - shapes: cpu ResizeBilinearGrad returns [batch, width, height, depth] (a transposition bug in
 *   tfjs-backend-cpu 4.22; the tape then rejects it for non-square images), wasm the images' shape;
 *   cpu Prelu broadcasts x with alpha, wasm keeps x's shape.
 * - wasm has no Conv2DBackpropFilter (no conv filter gradients on stock wasm), and its
 *   BatchMatMul/_FusedMatMul/MaxPool accept float32 only; 'meta-wasm' refuses the same things, until
 *   registerMetaWasmTrainingKernels() mirrors the project's registerWasmTrainingKernels().
 *
 * All these differences are data, one entry per flavour in flavors.ts; kernels consult their backend's
 * traits and never its name. Layout, as in tfjs's own backends: backend.ts (the KernelBackend), helpers.ts and
 * shapes.ts (what kernels share), kernels/ (one file per family, each a table keyed by tfjs's kernel-name
 * constants), register.ts (backends and kernels into tfjs's registry).
 *
 * What cannot be mirrored: checks that need values (GatherV2's index range check, anything that reads
 * a tensor such as tf.whereAsync or tf.booleanMaskAsync) and complex64 kernels.
 */
export { MetaBackend } from './backend.js';
export { META_BACKEND_NAME, META_WASM_BACKEND_NAME, type MetaFlavor } from './flavors.js';
export { metaKernelNames, registerMetaBackend, registerMetaWasmTrainingKernels } from './register.js';
