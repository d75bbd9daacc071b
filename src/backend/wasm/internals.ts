/**
 * The face of tfjs-backend-wasm's BackendWasm that the project's wasm kernels rely on, and the helpers they
 * share: calling another wasm kernel, releasing intermediates, reading and viewing the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export type TensorInfo = tf.TensorInfo;
export type Shape4 = [number, number, number, number];

export const WASM_BACKEND = 'wasm';

/** The parts of tfjs-backend-wasm's BackendWasm these kernels rely on. */
export interface WasmTensorData {
  id: number;
  memoryOffset: number;
  refCount: number;
}
export interface WasmBackendInternals {
  wasm: {
    HEAPU8: Uint8Array;
    tfjs: { disposeData(id: number): void };
    /** Emscripten's memory and allocator, for the project's own wasm modules (gemm/, sums/). */
    asm: { memory: { readonly buffer: ArrayBuffer } };
    _malloc(bytes: number): number;
    _free(pointer: number): void;
  };
  dataIdMap: {
    get(dataId: object): WasmTensorData | undefined;
    delete(dataId: object): boolean;
  };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

/** A kernel's inputs as tfjs names them (e.g. tf.Conv2DBackpropFilterInputs), every one present. */
export type Present<I> = { [K in keyof I]-?: NonNullable<I[K]> };

export interface WasmKernelArgs<I, A> {
  inputs: Present<I>;
  backend: WasmBackendInternals;
  attrs: A;
}

/**
 * A KernelConfig for the 'wasm' backend from a kernel typed with tfjs's input and attr types. The engine
 * hands every kernel the untyped {inputs, backend, attrs}; this is the one place that says what they are,
 * as tfjs's own backends do (`kernelFunc: conv2d as unknown as KernelFunc`).
 */
export function wasmKernel<I, A>(
  kernelName: string,
  fn: (args: WasmKernelArgs<I, A>) => TensorInfo | TensorInfo[],
): tf.KernelConfig {
  return { kernelName, backendName: WASM_BACKEND, kernelFunc: fn as unknown as tf.KernelFunc };
}

/**
 * Kernels replaced by registerWasmFastOverrides(), keyed by name. Composite kernels call through this map
 * first (see run) so that an override can never recurse into itself.
 */
export const originalKernels = new Map<string, tf.KernelConfig>();

/** The wasm kernel `name` as it was before any fast override replaced it. */
export function originalKernelFunc(name: string): tf.KernelFunc {
  const cfg = originalKernels.get(name) ?? tf.getKernel(name, WASM_BACKEND);
  if (cfg == null) {
    throw new Error(`wasm-kernels: the wasm backend has no '${name}' kernel`);
  }
  return cfg.kernelFunc;
}

/** Runs another wasm kernel (its original, never an override) the way the wasm backend composes kernels. */
export function run(backend: WasmBackendInternals, name: string, inputs: tf.NamedTensorInfoMap, attrs: object = {}): TensorInfo {
  const out = originalKernelFunc(name)({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
  return Array.isArray(out) ? (out[0] as TensorInfo) : out;
}

export function release(backend: WasmBackendInternals, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

export function reshape(backend: WasmBackendInternals, x: TensorInfo, shape: number[]): TensorInfo {
  return run(backend, tf.Reshape, { x }, { shape } satisfies tf.ReshapeAttrs);
}

/** a·b through the one BatchMatMul case that reaches XNNPACK. */
export function matMul(backend: WasmBackendInternals, a: TensorInfo, b: TensorInfo): TensorInfo {
  return run(backend, tf.BatchMatMul, { a, b }, { transposeA: false, transposeB: false } satisfies tf.BatchMatMulAttrs);
}

export function transpose(backend: WasmBackendInternals, x: TensorInfo, perm: number[]): TensorInfo {
  return run(backend, tf.Transpose, { x }, { perm } satisfies tf.TransposeAttrs);
}

export function padV2(backend: WasmBackendInternals, x: TensorInfo, paddings: Array<[number, number]>): TensorInfo {
  return run(backend, tf.PadV2, { x }, { paddings, constantValue: 0 } satisfies tf.PadV2Attrs);
}

function dataOf(backend: WasmBackendInternals, t: TensorInfo): WasmTensorData {
  const d = backend.dataIdMap.get(t.dataId);
  if (d == null) throw new Error('wasm-kernels: tensor data is not on the wasm backend');
  return d;
}

/** Element offset of a float32 tensor in the wasm heap. */
export function offsetOf(backend: WasmBackendInternals, t: TensorInfo): number {
  return dataOf(backend, t).memoryOffset >>> 2;
}

/** Byte address of a tensor in the wasm heap (what the project's own wasm modules take). */
export function byteOffsetOf(backend: WasmBackendInternals, t: TensorInfo): number {
  return dataOf(backend, t).memoryOffset >>> 0;
}

/** Sets the first `size` floats of a tensor to 0 (an output the own GEMM accumulates into). */
export function zeroFill(backend: WasmBackendInternals, t: TensorInfo, size: number): void {
  const o = offsetOf(backend, t);
  heap(backend).fill(0, o, o + size);
}

/**
 * A fresh float32 view of the whole heap. Must be re-taken after anything
 * that can allocate: growing wasm memory detaches earlier views.
 */
export function heap(backend: WasmBackendInternals): Float32Array {
  return new Float32Array(backend.wasm.HEAPU8.buffer);
}

/**
 * Zero-copy tensor over a contiguous range of another tensor's memory. The
 * backend's makeOutput(shape, dtype, memoryOffset) registers foreign memory
 * without allocating; such a view must never reach backend.disposeData (that
 * would free() an interior pointer), so it is dropped with releaseView, which
 * unregisters it (running XNNPACK's disposal callbacks for any operator
 * cached on it) without freeing memory.
 */
export function view(backend: WasmBackendInternals, base: TensorInfo, elemOffset: number, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32', dataOf(backend, base).memoryOffset + 4 * elemOffset);
}

export function releaseView(backend: WasmBackendInternals, v: TensorInfo): void {
  const d = dataOf(backend, v);
  backend.wasm.tfjs.disposeData(d.id);
  backend.dataIdMap.delete(v.dataId);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function assertFloat32(kernel: string, ...infos: TensorInfo[]): void {
  for (const t of infos) {
    if (t.dtype !== 'float32') {
      throw new Error(`wasm-kernels: ${kernel} supports float32 only, got ${t.dtype}`);
    }
  }
}

/**
 * Above this many floats (4 MB) XNNPACK's packing of a right-hand operand
 * falls out of cache and becomes the bottleneck, so B is split along K.
 */
export const PACK_LIMIT = 1 << 20;
/** Target size of one K-chunk of B, in floats (256 KB). */
export const PACK_CHUNK = 1 << 16;
