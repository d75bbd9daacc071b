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
 * What cannot be mirrored: checks that need values (GatherV2's index range check, anything that reads
 * a tensor such as tf.whereAsync or tf.booleanMaskAsync) and complex64 kernels.
 */
import * as tf from '@tensorflow/tfjs';

/** Which real backend a meta backend mirrors, kernel by kernel. */
export type MetaFlavor = 'cpu' | 'wasm';

/** Backend name of the meta backend that mirrors the `cpu` backend. */
export const META_BACKEND_NAME = 'meta';
/** Backend name of the meta backend that mirrors the `wasm` backend. */
export const META_WASM_BACKEND_NAME = 'meta-wasm';

/** Far below cpu (1) and wasm/webgl (2), so tfjs never picks a meta backend on its own. */
const META_PRIORITY = -1000;

interface MetaTensorData {
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
  /** Bytes the real backend would hold for this data id (the buffer, not each tensor viewing it). */
  bytes: number;
}

function storageBytes(values: tf.backend_util.BackendValues | null | undefined, shape: number[], dtype: tf.DataType): number {
  if (dtype === 'string') {
    // Strings are stored encoded; their length is only known when values were given.
    if (Array.isArray(values)) {
      let total = 0;
      for (const v of values) total += v.length;
      return total;
    }
    return 0;
  }
  return tf.util.sizeFromShape(shape) * tf.util.bytesPerElement(dtype);
}

function describeShape(shape: number[]): string {
  return `[${shape.join(',')}]`;
}

/**
 * The meta backend. Register it with {@link registerMetaBackend}; then `await tf.setBackend('meta')`.
 * Besides the engine's own counters it tracks the bytes of live distinct buffers (the engine counts an
 * aliased buffer once per tensor viewing it), see {@link MetaBackend.residentBytes}.
 */
export class MetaBackend extends tf.KernelBackend {
  readonly flavor: MetaFlavor;
  readonly backendName: string;
  private readonly store: tf.DataStorage<MetaTensorData>;
  private nextDataId = 0;
  private resident = 0;
  private peakResident = 0;

  constructor(flavor: MetaFlavor = 'cpu') {
    super();
    if (flavor !== 'cpu' && flavor !== 'wasm') {
      throw new Error(`MetaBackend: flavor must be 'cpu' or 'wasm', got ${String(flavor)}`);
    }
    this.flavor = flavor;
    this.backendName = flavor === 'cpu' ? META_BACKEND_NAME : META_WASM_BACKEND_NAME;
    this.store = new tf.DataStorage<MetaTensorData>(this, tf.engine());
  }

  /** Keeps shape and dtype; the values (from tf.tensor, random ops, variables) are dropped. */
  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = { id: this.nextDataId++ };
    this.put(dataId, values, shape, dtype, 1);
    return dataId;
  }

  /** Called by the engine when a tensor of another backend is used here; the values are dropped. */
  override move(dataId: tf.DataId, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.put(dataId, values, shape, dtype, refCount);
  }

  /** A fresh data id with no values, as a kernel output. */
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo {
    const dataId = { id: this.nextDataId++ };
    this.put(dataId, null, shape, dtype, 1);
    return { dataId, shape, dtype };
  }

  private put(dataId: tf.DataId, values: tf.backend_util.BackendValues | null, shape: number[], dtype: tf.DataType, refCount: number): void {
    const bytes = storageBytes(values, shape, dtype);
    this.store.set(dataId, { shape: shape.slice(), dtype, refCount, bytes });
    this.resident += bytes;
    if (this.resident > this.peakResident) this.peakResident = this.resident;
  }

  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    throw this.valuesUnavailable(dataId);
  }

  override read(dataId: tf.DataId): Promise<tf.backend_util.BackendValues> {
    return Promise.reject(this.valuesUnavailable(dataId));
  }

  override readToGPU(dataId: tf.DataId): never {
    throw this.valuesUnavailable(dataId);
  }

  private valuesUnavailable(dataId: tf.DataId): Error {
    const what = this.store.has(dataId)
      ? `this tensor has shape ${describeShape(this.store.get(dataId).shape)} and dtype ${this.store.get(dataId).dtype}`
      : 'this tensor is not on it';
    return new Error(
      `Tensor values are not available on the '${this.backendName}' backend: it tracks shapes only ` +
        `(${what}); run the program on 'cpu' or 'wasm' to read values.`,
    );
  }

  /** Mirrors MathBackendCPU.refCount: 0 for unknown data ids. */
  override refCount(dataId: tf.DataId): number {
    return this.store.has(dataId) ? this.store.get(dataId).refCount : 0;
  }

  /** Mirrors MathBackendCPU.incRef (a data id owned by another backend is moved here first). */
  override incRef(dataId: tf.DataId): void {
    this.store.get(dataId).refCount++;
  }

  decRef(dataId: tf.DataId): void {
    if (this.store.has(dataId)) this.store.get(dataId).refCount--;
  }

  /**
   * Mirrors MathBackendCPU.disposeData: decrements the refCount and frees at zero (or when forced);
   * returns whether the data is gone, which is what decides the engine's numDataBuffers.
   */
  override disposeData(dataId: tf.DataId, force = false): boolean {
    if (this.store.has(dataId)) {
      const data = this.store.get(dataId);
      data.refCount--;
      if (!force && data.refCount > 0) return false;
      this.resident -= data.bytes;
      this.store.delete(dataId);
    }
    return true;
  }

  disposeIntermediateTensorInfo(tensorInfo: tf.TensorInfo): void {
    this.disposeData(tensorInfo.dataId);
  }

  override numDataIds(): number {
    return this.store.numDataIds();
  }

  override time(f: () => void): Promise<tf.BackendTimingInfo> {
    const start = tf.util.now();
    f();
    return Promise.resolve({ kernelMs: tf.util.now() - start });
  }

  override memory(): { unreliable: boolean; reasons?: string[] } {
    return { unreliable: false };
  }

  override floatPrecision(): 16 | 32 {
    return 32;
  }

  override dispose(): void {
    // Nothing is held outside the DataStorage, which goes with the instance.
  }

  /**
   * Bytes of the distinct live buffers: what the mirrored backend holds, counted per data id. Lower
   * than `tf.memory().numBytes` whenever tensors alias one buffer. Not modelled: kernel temporaries,
   * wasm heap fragmentation, and cpu's contiguous Slice/SplitV/Unpack outputs, which are subarray views
   * sharing (and keeping alive) their input's ArrayBuffer but are counted here as buffers of their own.
   */
  residentBytes(): number {
    return this.resident;
  }

  /** The highest {@link residentBytes} since creation or the last {@link resetPeakResidentBytes}. */
  peakResidentBytes(): number {
    return this.peakResident;
  }

  resetPeakResidentBytes(): void {
    this.peakResident = this.resident;
  }

  /**
   * Where a kernel input lives on another backend, brings it here the way a real kernel's read would
   * (the engine moves it; its values are dropped).
   */
  adopt(info: tf.TensorInfo): void {
    if (!this.store.has(info.dataId)) this.store.get(info.dataId);
  }

  /** Shape and dtype of a data id held here, or undefined. */
  dataInfo(dataId: tf.DataId): { shape: number[]; dtype: tf.DataType; refCount: number } | undefined {
    if (!this.store.has(dataId)) return undefined;
    const d = this.store.get(dataId);
    return { shape: d.shape.slice(), dtype: d.dtype, refCount: d.refCount };
  }
}

// ---------------------------------------------------------------------------------------------------
// Kernel helpers

type Inputs = tf.NamedTensorInfoMap;
type Attrs = tf.NamedAttrMap;
type Out = tf.TensorInfo | tf.TensorInfo[];
type KernelImpl = (inputs: Inputs, attrs: Attrs, b: MetaBackend, kernel: string) => Out;
type Shape4 = [number, number, number, number];

const bu = tf.backend_util;
const util = tf.util;

function input(inputs: Inputs, name: string, kernel: string): tf.TensorInfo {
  const t = inputs[name];
  if (t == null) throw new Error(`${kernel} on the meta backend: input '${name}' is missing`);
  return t;
}

function inputList(inputs: Inputs, kernel: string): tf.TensorInfo[] {
  // Concat, AddN and Pack receive their tensors as an array, not a named map.
  const list: unknown = inputs;
  if (!Array.isArray(list)) throw new Error(`${kernel} on the meta backend: expected an array of inputs`);
  return list as tf.TensorInfo[];
}

function attrsAs<T>(attrs: Attrs): T {
  return attrs as unknown as T;
}

function fresh(b: MetaBackend, shape: number[], dtype: tf.DataType): tf.TensorInfo {
  return b.makeTensorInfo(shape, dtype);
}

/** The output shares the input's buffer, as cpu/wasm Reshape does: one more reference, no bytes. */
function alias(b: MetaBackend, x: tf.TensorInfo, shape: number[] = x.shape, dtype: tf.DataType = x.dtype): tf.TensorInfo {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype };
}

/**
 * cpu's Identity aliases, stock wasm's copies; the project's wasm overrides (registerWasmFastOverrides) make
 * wasm's alias too, and registerMetaWasmTrainingKernels() mirrors that.
 */
function identity(b: MetaBackend, x: tf.TensorInfo): tf.TensorInfo {
  return b.flavor === 'cpu' || wasmIdentityAliases ? alias(b, x) : fresh(b, x.shape, x.dtype);
}

function assertNotComplex(kernel: string, ...ts: Array<tf.TensorInfo | undefined>): void {
  for (const t of ts) {
    if (t != null && t.dtype === 'complex64') {
      throw new Error(`${kernel} on the meta backend: complex64 tensors are not supported`);
    }
  }
}

function upcast(a: tf.DataType, b: tf.DataType): tf.DataType {
  return tf.upcastType(a, b);
}

function reshapeShape(x: tf.TensorInfo, shape: number[]): number[] {
  const xSize = util.sizeFromShape(x.shape);
  const $shape = util.inferFromImplicitShape(shape, xSize);
  const $xSize = util.sizeFromShape($shape);
  util.assert(
    xSize === $xSize,
    () =>
      `The new shape (${$shape}) has ${$xSize} elements and the old ` +
      `shape (${x.shape}) has ${xSize} elements. The new shape and old ` +
      `shape must have the same number of elements.`,
  );
  return $shape;
}

function expandDimsShape(shape: number[], dim: number): number[] {
  const rank = shape.length;
  const newShape = shape.slice();
  let $dim = dim;
  if (dim < 0) {
    util.assert(-(rank + 1) <= dim, () => `Axis must be in the interval [${-(rank + 1)}, ${rank}]`);
    $dim = rank + dim + 1;
  }
  newShape.splice($dim, 0, 1);
  return newShape;
}

/** Output shape of a reduction, following the cpu kernels (transpose to inner-most axes first). */
function reduceShape(kernel: string, xShape: number[], axis: number | number[], keepDims: boolean): number[] {
  const rank = xShape.length;
  const origAxes = util.parseAxisParam(axis, xShape);
  let axes = origAxes;
  let shape = xShape;
  const perm = bu.getAxesPermutation(axes, rank);
  if (perm != null) {
    shape = perm.map((p) => xShape[p] as number);
    axes = bu.getInnerMostAxes(axes.length, rank);
  }
  bu.assertAxesAreInnerMostDims(kernel, axes, rank);
  const [outShape] = bu.computeOutAndReduceShapes(shape, axes);
  return keepDims ? bu.expandShapeToKeepDim(outShape, origAxes) : outShape;
}

function argReduceShape(kernel: string, xShape: number[], axis: number | number[]): number[] {
  let axes = util.parseAxisParam(axis, xShape);
  let shape = xShape;
  const perm = bu.getAxesPermutation(axes, xShape.length);
  if (perm != null) {
    shape = perm.map((p) => xShape[p] as number);
    axes = bu.getInnerMostAxes(axes.length, shape.length);
  }
  axes = [axes[0] as number];
  bu.assertAxesAreInnerMostDims(kernel, axes, shape.length);
  return bu.computeOutAndReduceShapes(shape, axes)[0];
}

function concatOut(b: MetaBackend, ts: tf.TensorInfo[], axis: number | number[]): tf.TensorInfo {
  const first = ts[0];
  if (first == null) throw new Error('Concat on the meta backend: needs at least one input');
  const $axis = util.parseAxisParam(axis, first.shape)[0] as number;
  const shapes = ts.map((t) => t.shape);
  bu.assertParamsConsistent(shapes, $axis);
  const outShape = bu.computeOutShape(shapes, $axis);
  if (b.flavor === 'cpu') {
    if (util.sizeFromShape(outShape) === 0) return fresh(b, outShape, first.dtype);
    const nonEmpty = ts.filter((t) => util.sizeFromShape(t.shape) > 0);
    if (nonEmpty.length === 1) return alias(b, nonEmpty[0] as tf.TensorInfo);
    assertNotComplex('Concat', ...nonEmpty);
    return fresh(b, bu.computeOutShape(nonEmpty.map((t) => t.shape), $axis), first.dtype);
  }
  const nonEmpty = ts.filter((t) => util.sizeFromShape(t.shape) > 0);
  if (nonEmpty.length === 1) return fresh(b, (nonEmpty[0] as tf.TensorInfo).shape, (nonEmpty[0] as tf.TensorInfo).dtype);
  return fresh(b, outShape, first.dtype);
}

/** Output of cpu's applyActivation (fused kernels) given the pre-activation shape and dtype. */
function cpuActivation(shape: number[], dtype: tf.DataType, activation: string | undefined, alpha: tf.TensorInfo | undefined, alphaShape?: number[]): [number[], tf.DataType] {
  if (activation == null) return [shape, dtype];
  switch (activation) {
    case 'linear':
    case 'relu':
    case 'elu':
    case 'relu6':
    case 'sigmoid':
      return [shape, dtype];
    case 'leakyrelu':
      return [shape, 'float32'];
    case 'prelu': {
      if (alpha == null) throw new Error("prelu activation needs 'preluActivationWeights'");
      return [bu.assertAndGetBroadcastShape(shape, alphaShape ?? alpha.shape), 'float32'];
    }
    default:
      throw new Error(`Activation ${activation} has not been implemented for the CPU backend.`);
  }
}

const WASM_FUSABLE = new Set(['linear', 'relu', 'relu6', 'prelu', 'leakyrelu', 'sigmoid', 'elu']);

function unary(dtypeOf: (x: tf.TensorInfo, b: MetaBackend) => tf.DataType): KernelImpl {
  return (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    return fresh(b, x.shape, dtypeOf(x, b));
  };
}

function binary(dtypeOf: (a: tf.TensorInfo, b: MetaBackend) => tf.DataType): KernelImpl {
  return (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'a', kernel);
    const y = input(inputs, 'b', kernel);
    assertNotComplex(kernel, x, y);
    return fresh(b, bu.assertAndGetBroadcastShape(x.shape, y.shape), dtypeOf(x, b));
  };
}

const sameDtype = (x: tf.TensorInfo): tf.DataType => x.dtype;
const float32 = (): tf.DataType => 'float32';
const boolean = (): tf.DataType => 'bool';

// ---------------------------------------------------------------------------------------------------
// Kernels

const KERNELS = new Map<string, KernelImpl>();
/** Kernels the wasm backend does not have: 'meta-wasm' leaves them unregistered so programs fail alike. */
const CPU_ONLY = new Set<string>(['Conv2DBackpropFilter']);
/** Kernels only the wasm backend has. */
const WASM_ONLY = new Set<string>(['LogicalXor']);

for (const name of [
  'Abs', 'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'Ceil', 'ClipByValue', 'Cos', 'Cosh', 'Elu',
  'Erf', 'Floor', 'Log', 'Log1p', 'Neg', 'Reciprocal', 'Relu', 'Relu6', 'Round', 'Rsqrt', 'Selu',
  'Sigmoid', 'Sign', 'Sin', 'Sinh', 'Softplus', 'Sqrt', 'Square', 'Step', 'Tan', 'Tanh',
]) {
  KERNELS.set(name, unary(sameDtype));
}
KERNELS.set('Exp', unary(float32));
KERNELS.set('Expm1', unary((x, b) => (b.flavor === 'cpu' ? x.dtype : 'float32')));
KERNELS.set('LeakyRelu', unary(float32));
KERNELS.set('IsFinite', unary(boolean));
KERNELS.set('IsInf', unary(boolean));
KERNELS.set('IsNan', unary(boolean));
KERNELS.set('LogicalNot', unary((x, b) => (b.flavor === 'cpu' ? 'bool' : x.dtype)));

KERNELS.set('Prelu', (inputs, _attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const alpha = input(inputs, 'alpha', kernel);
  assertNotComplex(kernel, x, alpha);
  const shape = b.flavor === 'cpu' ? bu.assertAndGetBroadcastShape(x.shape, alpha.shape) : x.shape;
  return fresh(b, shape, 'float32');
});

KERNELS.set('EluGrad', (inputs, _attrs, b, kernel) => {
  const dy = input(inputs, 'dy', kernel);
  const y = input(inputs, 'y', kernel);
  assertNotComplex(kernel, dy, y);
  return fresh(b, y.shape, 'float32');
});

for (const name of ['Add', 'Sub', 'Multiply', 'RealDiv', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference', 'Mod', 'Atan2']) {
  KERNELS.set(name, binary(sameDtype));
}
KERNELS.set('FloorDiv', binary((a, b) => (b.flavor === 'cpu' ? 'int32' : a.dtype)));
for (const name of ['Equal', 'NotEqual', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'LogicalAnd', 'LogicalOr', 'LogicalXor']) {
  KERNELS.set(name, binary(boolean));
}

KERNELS.set('AddN', (inputs, _attrs, b, kernel) => {
  const ts = inputList(inputs, kernel);
  assertNotComplex(kernel, ...ts);
  const first = ts[0];
  if (first == null) throw new Error('AddN on the meta backend: needs at least one input');
  return fresh(b, first.shape, first.dtype);
});

KERNELS.set('Select', (inputs, _attrs, b, kernel) => {
  const condition = input(inputs, 'condition', kernel);
  const t = input(inputs, 't', kernel);
  const e = input(inputs, 'e', kernel);
  assertNotComplex(kernel, condition, t, e);
  return fresh(b, t.shape, b.flavor === 'cpu' ? upcast(t.dtype, e.dtype) : t.dtype);
});

// Reductions
KERNELS.set('Sum', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { axis, keepDims } = attrsAs<tf.SumAttrs>(attrs);
  const dtype = b.flavor === 'cpu' ? upcast(x.dtype === 'bool' ? 'int32' : x.dtype, 'int32') : x.dtype;
  return fresh(b, reduceShape('sum', x.shape, axis, keepDims), dtype);
});
KERNELS.set('Prod', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { axis, keepDims } = attrsAs<tf.ProdAttrs>(attrs);
  const dtype = b.flavor === 'cpu' ? upcast(x.dtype, 'int32') : x.dtype;
  return fresh(b, reduceShape('prod', x.shape, axis, keepDims), dtype);
});
KERNELS.set('Mean', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { axis, keepDims } = attrsAs<tf.MeanAttrs>(attrs);
  return fresh(b, reduceShape('mean', x.shape, axis, keepDims), 'float32');
});
KERNELS.set('Max', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { reductionIndices, keepDims } = attrsAs<tf.MaxAttrs>(attrs);
  return fresh(b, reduceShape('max', x.shape, reductionIndices, keepDims), x.dtype);
});
for (const [name, msg] of [['Min', 'min'], ['All', 'all'], ['Any', 'any']] as const) {
  KERNELS.set(name, (inputs, attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    const { axis, keepDims } = attrsAs<tf.MinAttrs>(attrs);
    return fresh(b, reduceShape(msg, x.shape, axis, keepDims), x.dtype);
  });
}
for (const [name, msg] of [['ArgMax', 'argMax'], ['ArgMin', 'argMin']] as const) {
  KERNELS.set(name, (inputs, attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    const { axis } = attrsAs<tf.ArgMaxAttrs>(attrs);
    return fresh(b, argReduceShape(msg, x.shape, axis), 'int32');
  });
}
for (const name of ['Cumsum', 'Cumprod']) {
  KERNELS.set(name, (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    if (b.flavor === 'wasm') {
      util.assert(x.dtype === 'float32' || x.dtype === 'int32', () => `${name.toLowerCase()} does not support ${x.dtype} tensors in the WASM backend`);
    }
    return fresh(b, x.shape, b.flavor === 'cpu' ? upcast(x.dtype, 'int32') : x.dtype);
  });
}

// Shape and data movement
KERNELS.set('Reshape', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const { shape } = attrsAs<tf.ReshapeAttrs>(attrs);
  return alias(b, x, reshapeShape(x, shape));
});
KERNELS.set('ExpandDims', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'input', kernel);
  const { dim } = attrsAs<tf.ExpandDimsAttrs>(attrs);
  return alias(b, x, reshapeShape(x, expandDimsShape(x.shape, dim)));
});
KERNELS.set('Identity', (inputs, _attrs, b, kernel) => identity(b, input(inputs, 'x', kernel)));
KERNELS.set('Cast', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const { dtype } = attrsAs<tf.CastAttrs>(attrs);
  if (dtype === 'complex64' || x.dtype === 'complex64') {
    throw new Error('Cast on the meta backend: complex64 tensors are not supported');
  }
  if (b.flavor === 'cpu') {
    // cpu reuses the buffer when the cast loses nothing (it only relabels the dtype).
    if (!util.hasEncodingLoss(x.dtype, dtype)) return alias(b, x, x.shape, dtype);
    if (dtype !== 'int32' && dtype !== 'bool') throw new Error(`Error in Cast: failed to cast ${x.dtype} to ${dtype}`);
  }
  return fresh(b, x.shape, dtype);
});
KERNELS.set('Concat', (inputs, attrs, b, kernel) => {
  const { axis } = attrsAs<tf.ConcatAttrs>(attrs);
  return concatOut(b, inputList(inputs, kernel), axis);
});
KERNELS.set('Pack', (inputs, attrs, b, kernel) => {
  const ts = inputList(inputs, kernel);
  const { axis } = attrsAs<tf.PackAttrs>(attrs);
  const first = ts[0];
  if (first == null) throw new Error('Pack on the meta backend: needs at least one input');
  if (ts.length === 1) return alias(b, first, reshapeShape(first, expandDimsShape(first.shape, axis)));
  for (const t of ts) {
    util.assertShapesMatch(first.shape, t.shape, 'All tensors passed to stack must have matching shapes');
    util.assert(first.dtype === t.dtype, () => 'All tensors passed to stack must have matching dtypes');
  }
  const expanded = ts.map((t) => ({ dataId: t.dataId, dtype: t.dtype, shape: expandDimsShape(t.shape, axis) }));
  // The expanded views are the kernel's own temporaries; only concat's output survives, and with two or
  // more equally shaped inputs that is never an alias.
  const $axis = util.parseAxisParam(axis, (expanded[0] as tf.TensorInfo).shape)[0] as number;
  const shapes = expanded.map((t) => t.shape);
  bu.assertParamsConsistent(shapes, $axis);
  return fresh(b, bu.computeOutShape(shapes, $axis), first.dtype);
});
KERNELS.set('Unpack', (inputs, attrs, b, kernel) => {
  const value = input(inputs, 'value', kernel);
  let { axis } = attrsAs<tf.UnpackAttrs>(attrs);
  if (axis < 0) axis += value.shape.length;
  const num = value.shape[axis];
  if (num == null) throw new Error(`Unpack: axis ${axis} is out of range for shape ${describeShape(value.shape)}`);
  const outShape = value.shape.filter((_, i) => i !== axis);
  const outs: tf.TensorInfo[] = [];
  for (let i = 0; i < num; i++) outs.push(fresh(b, outShape.slice(), value.dtype));
  return outs;
});
KERNELS.set('SplitV', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const { numOrSizeSplits, axis } = attrsAs<tf.SplitVAttrs>(attrs);
  const $axis = util.parseAxisParam(axis, x.shape)[0] as number;
  const sizes = bu.prepareSplitSize(x, numOrSizeSplits, $axis);
  const begin: number[] = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = x.shape.slice();
    size[$axis] = s;
    if (b.flavor === 'cpu') {
      const [$begin, $size] = tf.slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
      tf.slice_util.assertParamsValid(x, $begin, $size);
    }
    begin[$axis] = (begin[$axis] as number) + s;
    return fresh(b, size, x.dtype);
  });
});
KERNELS.set('Slice', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { begin, size } = attrsAs<tf.SliceAttrs>(attrs);
  const [$begin, $size] = tf.slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
  if (b.flavor === 'cpu') tf.slice_util.assertParamsValid(x, $begin, $size);
  return fresh(b, $size, x.dtype);
});
KERNELS.set('StridedSlice', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const a = attrsAs<tf.StridedSliceAttrs>(attrs);
  const info = tf.slice_util.sliceInfo(x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask);
  if (info.isIdentity) return alias(b, x, reshapeShape(x, info.finalShape));
  if (info.sliceDim0 || info.isSimpleSlice) {
    util.assert(x.shape.length >= 1, () => `Input must have rank at least 1, got: ${x.shape.length}`);
    const size = tf.slice_util.computeOutShape(info.begin, info.end, info.strides);
    const [$begin, $size] = tf.slice_util.parseSliceParams(x, info.begin, size) as [number[], number[]];
    if (b.flavor === 'cpu') tf.slice_util.assertParamsValid(x, $begin, $size);
    return fresh(b, reshapeShape({ dataId: x.dataId, shape: $size, dtype: x.dtype }, info.finalShape), x.dtype);
  }
  return fresh(b, info.finalShape, b.flavor === 'cpu' ? x.dtype : 'float32');
});
KERNELS.set('Transpose', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { perm } = attrsAs<tf.TransposeAttrs>(attrs);
  return fresh(b, perm.map((p) => x.shape[p] as number), x.dtype);
});
KERNELS.set('Tile', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { reps } = attrsAs<tf.TileAttrs>(attrs);
  return fresh(b, x.shape.map((d, i) => d * (reps[i] as number)), x.dtype);
});
for (const name of ['PadV2', 'MirrorPad']) {
  KERNELS.set(name, (inputs, attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(kernel, x);
    const { paddings } = attrsAs<tf.PadV2Attrs>(attrs);
    return fresh(b, paddings.map((p, i) => p[0] + (x.shape[i] as number) + p[1]), x.dtype);
  });
}
KERNELS.set('Reverse', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { dims } = attrsAs<tf.ReverseAttrs>(attrs);
  util.parseAxisParam(dims, x.shape);
  if (x.shape.length === 0) return identity(b, x);
  return fresh(b, x.shape, x.dtype);
});
KERNELS.set('FlipLeftRight', (inputs, _attrs, b, kernel) => {
  const image = input(inputs, 'image', kernel);
  return fresh(b, image.shape, image.dtype);
});
KERNELS.set('GatherV2', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const indices = input(inputs, 'indices', kernel);
  assertNotComplex(kernel, x, indices);
  const { axis, batchDims } = attrsAs<tf.GatherV2Attrs>(attrs);
  const parsedAxis = util.parseAxisParam(axis, x.shape)[0] as number;
  const info = bu.segment_util.collectGatherOpShapeInfo(x, indices, parsedAxis, batchDims ?? 0);
  if (b.flavor === 'wasm' && util.sizeFromShape(x.shape) === 0) {
    // wasm returns early here without releasing its reshaped views of x and indices, so both stay
    // referenced; the output keeps the flattened 4-D shape.
    b.incRef(x.dataId);
    b.incRef(indices.dataId);
    const indicesSize = util.sizeFromShape(indices.shape);
    return fresh(b, [info.batchSize, info.outerSize, indicesSize / info.batchSize, info.sliceSize], x.dtype);
  }
  return fresh(b, info.outputShape, x.dtype);
});
KERNELS.set('OneHot', (inputs, attrs, b, kernel) => {
  const indices = input(inputs, 'indices', kernel);
  assertNotComplex(kernel, indices);
  const { dtype, depth } = attrsAs<tf.OneHotAttrs>(attrs);
  return fresh(b, [...indices.shape, depth], dtype);
});
KERNELS.set('Fill', (_inputs, attrs, b) => {
  const { shape, value, dtype } = attrsAs<tf.FillAttrs>(attrs);
  return fresh(b, shape, dtype ?? util.inferDtype(value));
});
for (const name of ['ZerosLike', 'OnesLike']) {
  KERNELS.set(name, (inputs, _attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    if (x.dtype === 'string' && b.flavor === 'cpu') {
      throw new Error(`${name === 'ZerosLike' ? 'zerosLike' : 'onesLike'} is not supported for string tensors`);
    }
    assertNotComplex(kernel, x);
    return fresh(b, x.shape, x.dtype);
  });
}
KERNELS.set('Range', (_inputs, attrs, b) => {
  const { start, stop, step, dtype } = attrsAs<tf.RangeAttrs>(attrs);
  const empty = start === stop || (start < stop && step < 0) || (stop < start && step > 1);
  const n = empty ? 0 : Math.abs(Math.ceil((stop - start) / step));
  return fresh(b, [n], dtype);
});
KERNELS.set('LinSpace', (_inputs, attrs, b) => {
  const { num } = attrsAs<tf.LinSpaceAttrs>(attrs);
  return fresh(b, [num], 'float32');
});
KERNELS.set('TopK', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  assertNotComplex(kernel, x);
  const { k } = attrsAs<tf.TopKAttrs>(attrs);
  const shape = x.shape.slice();
  shape[shape.length - 1] = k;
  return [fresh(b, shape, x.dtype), fresh(b, shape.slice(), 'int32')];
});

// Softmax
KERNELS.set('Softmax', (inputs, attrs, b, kernel) => {
  const logits = input(inputs, 'logits', kernel);
  const { dim } = attrsAs<tf.SoftmaxAttrs>(attrs);
  if (b.flavor === 'wasm') return fresh(b, logits.shape, logits.dtype);
  const rank = logits.shape.length;
  const $dim = dim === -1 ? rank - 1 : dim;
  if ($dim !== rank - 1) {
    throw Error('Softmax along a non-last dimension is not yet supported. ' + `Logits was rank ${rank} and dim was ${$dim}`);
  }
  util.parseAxisParam([$dim], logits.shape);
  return fresh(b, logits.shape, 'float32');
});

// Matrix products
function batchMatMulShape(a: tf.TensorInfo, bb: tf.TensorInfo, transposeA: boolean, transposeB: boolean): number[] {
  const aRank = a.shape.length;
  const bRank = bb.shape.length;
  const innerShapeA = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const innerShapeB = transposeB ? bb.shape[bRank - 1] : bb.shape[bRank - 2];
  const outerShapeA = (transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2]) as number;
  const outerShapeB = (transposeB ? bb.shape[bRank - 2] : bb.shape[bRank - 1]) as number;
  const outerDims = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), bb.shape.slice(0, -2));
  util.assert(
    innerShapeA === innerShapeB,
    () =>
      `Error in matMul: inner shapes (${innerShapeA}) and (` +
      `${innerShapeB}) of Tensors with shapes ${a.shape} and ` +
      `${bb.shape} and transposeA=${transposeA}` +
      ` and transposeB=${transposeB} must match.`,
  );
  return outerDims.concat([outerShapeA, outerShapeB]);
}

KERNELS.set('BatchMatMul', (inputs, attrs, b, kernel) => {
  const a = input(inputs, 'a', kernel);
  const bb = input(inputs, 'b', kernel);
  assertNotComplex('matMul', a, bb);
  if (b.flavor === 'wasm' && (a.dtype !== 'float32' || bb.dtype !== 'float32')) {
    throw new Error('BatchMatMul for non non-float32 tensors not yet supported.');
  }
  const { transposeA, transposeB } = attrsAs<tf.BatchMatMulAttrs>(attrs);
  return fresh(b, batchMatMulShape(a, bb, transposeA, transposeB), a.dtype);
});
KERNELS.set('_FusedMatMul', (inputs, attrs, b, kernel) => {
  const a = input(inputs, 'a', kernel);
  const bb = input(inputs, 'b', kernel);
  const bias = inputs['bias'];
  const alpha = inputs['preluActivationWeights'];
  const { transposeA, transposeB, activation } = attrsAs<tf._FusedMatMulAttrs>(attrs);
  if (b.flavor === 'wasm') {
    if (a.dtype !== 'float32' || bb.dtype !== 'float32') {
      throw new Error('_FusedMatMul for non non-float32 tensors not yet supported.');
    }
    if (bias != null && bias.shape.length !== 1) {
      throw new Error(`_FusedMatMul only supports rank-1 bias but got rank ${bias.shape.length}.`);
    }
    if (!WASM_FUSABLE.has(activation)) {
      throw new Error(`${activation} activation not yet supported for FusedConv2D in the wasm backend.`);
    }
    const leftDim = (transposeA ? a.shape[2] : a.shape[1]) as number;
    const rightDim = (transposeB ? bb.shape[1] : bb.shape[2]) as number;
    const batchDims = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), bb.shape.slice(0, -2));
    return fresh(b, [...batchDims, leftDim, rightDim], a.dtype);
  }
  assertNotComplex('matMul', a, bb);
  let shape = batchMatMulShape(a, bb, transposeA, transposeB);
  if (bias != null) shape = bu.assertAndGetBroadcastShape(shape, bias.shape);
  const [outShape, dtype] = cpuActivation(shape, a.dtype, activation, alpha);
  return fresh(b, outShape, dtype);
});

// Convolutions
function convInfoOf(xShape: number[], filterShape: number[], a: { strides: [number, number] | number; pad: tf.Conv2DAttrs['pad']; dimRoundingMode?: 'floor' | 'round' | 'ceil' }, dilations: [number, number] | number, dataFormat: 'NHWC' | 'NCHW' | undefined): tf.backend_util.Conv2DInfo {
  const $dataFormat = bu.convertConv2DDataFormat(dataFormat ?? 'NHWC');
  return bu.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, a.strides, dilations, a.pad, a.dimRoundingMode, false, $dataFormat);
}

KERNELS.set('Conv2D', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const filter = input(inputs, 'filter', kernel);
  assertNotComplex('conv2d', x, filter);
  const a = attrsAs<tf.Conv2DAttrs>(attrs);
  const info = convInfoOf(x.shape, filter.shape, a, a.dilations, a.dataFormat);
  if (b.flavor === 'wasm') {
    if (info.dataFormat !== 'channelsLast') {
      throw new Error(`wasm backend Conv2D does not support dataFormat:'${info.dataFormat}'. Please use 'channelsLast'.`);
    }
    return fresh(b, info.outShape, 'float32');
  }
  return fresh(b, info.outShape, x.dtype);
});
KERNELS.set('Conv2DBackpropInput', (inputs, attrs, b, kernel) => {
  const dy = input(inputs, 'dy', kernel);
  const filter = input(inputs, 'filter', kernel);
  assertNotComplex('conv2dBackpropInput', dy, filter);
  const a = attrsAs<tf.Conv2DBackpropInputAttrs>(attrs);
  const info = convInfoOf(a.inputShape, filter.shape, a, 1, a.dataFormat);
  return fresh(b, info.inShape, 'float32');
});
KERNELS.set('Conv2DBackpropFilter', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const dy = input(inputs, 'dy', kernel);
  assertNotComplex('conv2dBackpropFilter', x, dy);
  const a = attrsAs<tf.Conv2DBackpropFilterAttrs>(attrs);
  const info = convInfoOf(x.shape, a.filterShape, a, 1, a.dataFormat);
  return fresh(b, info.filterShape, 'float32');
});
KERNELS.set('FusedConv2D', (inputs, attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const filter = input(inputs, 'filter', kernel);
  const bias = inputs['bias'];
  const alpha = inputs['preluActivationWeights'];
  const a = attrsAs<tf.FusedConv2DAttrs>(attrs);
  if (b.flavor === 'wasm') {
    const info = bu.computeConv2DInfo(x.shape as Shape4, filter.shape as Shape4, a.strides, a.dilations, a.pad, a.dimRoundingMode);
    if (!WASM_FUSABLE.has(a.activation)) {
      throw new Error(`${a.activation} activation not yet supported for FusedConv2D in the wasm backend.`);
    }
    if (bias != null) {
      if (bias.shape.length !== 1) throw new Error(`FusedConv2D only supports rank-1 bias but got rank ${bias.shape.length}.`);
      if (bias.shape[0] !== info.outChannels) {
        throw new Error(`FusedConv2D bias shape (${bias.shape}) does not match the number of output channels (${info.outChannels})`);
      }
    }
    if (a.dataFormat !== 'NHWC') {
      throw new Error(`wasm backend FusedConv2D does not support dataFormat:'${a.dataFormat}'. Please use 'NHWC'.`);
    }
    return fresh(b, info.outShape, 'float32');
  }
  assertNotComplex('conv2d', x, filter);
  const info = convInfoOf(x.shape, filter.shape, a, a.dilations, a.dataFormat);
  let shape: number[] = info.outShape;
  const nchw = a.dataFormat === 'NCHW';
  if (bias != null) {
    const biasShape = nchw && bias.shape.length === 1 && bias.shape[0] !== 1 ? [bias.shape[0] as number, 1, 1] : bias.shape;
    shape = bu.assertAndGetBroadcastShape(shape, biasShape);
  }
  const alphaShape =
    alpha != null && nchw && a.activation === 'prelu' && alpha.shape.length === 1 && alpha.shape[0] !== 1
      ? [alpha.shape[0] as number, 1, 1]
      : alpha?.shape;
  const [outShape, dtype] = cpuActivation(shape, x.dtype, a.activation, alpha, alphaShape);
  return fresh(b, outShape, dtype);
});

// Pooling
function poolInfoOf(xShape: number[], a: tf.MaxPoolAttrs | tf.AvgPoolGradAttrs, withRounding: boolean): tf.backend_util.Conv2DInfo {
  const rounding = withRounding && 'dimRoundingMode' in a ? a.dimRoundingMode : undefined;
  return bu.computePool2DInfo(xShape as Shape4, a.filterSize, a.strides, 1, a.pad, rounding);
}

for (const [name, opName] of [['MaxPool', 'maxPool'], ['AvgPool', 'avgPool']] as const) {
  KERNELS.set(name, (inputs, attrs, b, kernel) => {
    const x = input(inputs, 'x', kernel);
    assertNotComplex(opName, x);
    const a = attrsAs<tf.MaxPoolAttrs>(attrs);
    if (b.flavor === 'wasm') {
      if (name === 'MaxPool') {
        util.assert(x.dtype === 'float32', () => `Error in MaxPool: only float32 input is supported. Got ${x.dtype}.`);
      }
      return fresh(b, poolInfoOf(x.shape, a, true).outShape, 'float32');
    }
    const info = poolInfoOf(x.shape, a, true);
    // cpu hands back the input itself for a 1x1 window that keeps the shape.
    if (info.filterWidth === 1 && info.filterHeight === 1 && util.arraysEqual(info.inShape, info.outShape)) {
      return alias(b, x);
    }
    return fresh(b, info.outShape, x.dtype);
  });
}
KERNELS.set('MaxPoolGrad', (inputs, attrs, b, kernel) => {
  input(inputs, 'dy', kernel);
  const x = input(inputs, 'input', kernel);
  const output = input(inputs, 'output', kernel);
  assertNotComplex('maxPoolGrad', x, output);
  poolInfoOf(x.shape, attrsAs<tf.MaxPoolGradAttrs>(attrs), true);
  return fresh(b, x.shape, b.flavor === 'cpu' ? 'float32' : x.dtype);
});
KERNELS.set('AvgPoolGrad', (inputs, attrs, b, kernel) => {
  const dy = input(inputs, 'dy', kernel);
  const x = input(inputs, 'input', kernel);
  assertNotComplex('avgPoolGrad', dy, x);
  poolInfoOf(x.shape, attrsAs<tf.AvgPoolGradAttrs>(attrs), false);
  return fresh(b, x.shape, b.flavor === 'cpu' ? 'float32' : x.dtype);
});

KERNELS.set('FusedBatchNorm', (inputs, _attrs, b, kernel) => {
  const x = input(inputs, 'x', kernel);
  const mean = input(inputs, 'mean', kernel);
  const variance = input(inputs, 'variance', kernel);
  const offset = inputs['offset'];
  const scale = inputs['scale'];
  if (b.flavor === 'cpu') {
    util.assert(mean.shape.length === variance.shape.length, () => 'Batch normalization gradient requires mean and variance to have equal ranks.');
    util.assert(offset == null || mean.shape.length === offset.shape.length, () => 'Batch normalization gradient requires mean and offset to have equal ranks.');
    util.assert(scale == null || mean.shape.length === scale.shape.length, () => 'Batch normalization gradient requires mean and scale to have equal ranks.');
    assertNotComplex('batchNorm', x, mean, variance, scale, offset);
  }
  return fresh(b, x.shape, x.dtype);
});

// Images
KERNELS.set('ResizeBilinear', (inputs, attrs, b, kernel) => {
  const images = input(inputs, 'images', kernel);
  assertNotComplex('resizeBilinear', images);
  const { size } = attrsAs<tf.ResizeBilinearAttrs>(attrs);
  const [batch, , , channels] = images.shape as Shape4;
  return fresh(b, [batch, size[0], size[1], channels], 'float32');
});
KERNELS.set('ResizeBilinearGrad', (inputs, _attrs, b, kernel) => {
  const images = input(inputs, 'images', kernel);
  const dy = input(inputs, 'dy', kernel);
  assertNotComplex('resizeBilinearGrad', dy, images);
  if (b.flavor === 'wasm') return fresh(b, images.shape, 'float32');
  const [batch, height, width, depth] = images.shape as Shape4;
  // Height and width swapped: tfjs-backend-cpu 4.22 does exactly this.
  return fresh(b, [batch, width, height, depth], 'float32');
});
KERNELS.set('ResizeNearestNeighbor', (inputs, attrs, b, kernel) => {
  const images = input(inputs, 'images', kernel);
  assertNotComplex('resizeNearestNeighbor', images);
  const { size } = attrsAs<tf.ResizeNearestNeighborAttrs>(attrs);
  const [batch, , , channels] = images.shape as Shape4;
  return fresh(b, [batch, size[0], size[1], channels], b.flavor === 'cpu' ? images.dtype : 'float32');
});
KERNELS.set('ResizeNearestNeighborGrad', (inputs, _attrs, b, kernel) => {
  const images = input(inputs, 'images', kernel);
  const dy = input(inputs, 'dy', kernel);
  assertNotComplex('resizeNearestNeighborGrad', dy, images);
  return fresh(b, images.shape, b.flavor === 'cpu' ? images.dtype : 'float32');
});
KERNELS.set('CropAndResize', (inputs, attrs, b, kernel) => {
  const image = input(inputs, 'image', kernel);
  const boxes = input(inputs, 'boxes', kernel);
  input(inputs, 'boxInd', kernel);
  const { cropSize } = attrsAs<tf.CropAndResizeAttrs>(attrs);
  return fresh(b, [boxes.shape[0] as number, cropSize[0], cropSize[1], image.shape[3] as number], 'float32');
});

// ---------------------------------------------------------------------------------------------------
// Registration

/** cpu-only kernels that the project's wasm training kernels add to 'wasm' (see below). */
const WASM_TRAINING_KERNELS = ['Conv2DBackpropFilter'];
/** Set by registerMetaWasmTrainingKernels(): the project's wasm setup makes Identity alias. */
let wasmIdentityAliases = false;
const wasmExtras = new Set<string>();

function namesFor(flavor: MetaFlavor): string[] {
  const skip = flavor === 'cpu' ? WASM_ONLY : CPU_ONLY;
  return [...KERNELS.keys()].filter((k) => !skip.has(k) || (flavor === 'wasm' && wasmExtras.has(k))).sort();
}

/**
 * Names of the kernels the meta backend implements, sorted: for 'cpu' (backend 'meta', the default)
 * or 'wasm' (backend 'meta-wasm', which leaves out kernels the wasm backend lacks).
 */
export function metaKernelNames(flavor: MetaFlavor = 'cpu'): string[] {
  if (flavor !== 'cpu' && flavor !== 'wasm') {
    throw new Error(`metaKernelNames: flavor must be 'cpu' or 'wasm', got ${String(flavor)}`);
  }
  return namesFor(flavor);
}

function asMeta(backend: unknown, kernel: string): MetaBackend {
  if (!(backend instanceof MetaBackend)) {
    throw new Error(`${kernel}: the meta kernels only run on a MetaBackend`);
  }
  return backend;
}

/**
 * Registers the backends 'meta' (mirrors cpu) and 'meta-wasm' (mirrors wasm) and their kernels.
 * Idempotent. Their priority is far below any real backend's, so tfjs only uses them after an explicit
 * `await tf.setBackend('meta')`.
 */
export function registerMetaBackend(): void {
  for (const flavor of ['cpu', 'wasm'] as const) {
    const backendName = flavor === 'cpu' ? META_BACKEND_NAME : META_WASM_BACKEND_NAME;
    if (tf.findBackendFactory(backendName) == null) {
      tf.registerBackend(backendName, () => new MetaBackend(flavor), META_PRIORITY);
    }
    for (const kernelName of namesFor(flavor)) registerOne(kernelName, backendName);
  }
}

/** Registers one meta kernel; returns false when the backend already has it. */
function registerOne(kernelName: string, backendName: string): boolean {
  if (tf.getKernel(kernelName, backendName) != null) return false;
  const impl = KERNELS.get(kernelName) as KernelImpl;
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = asMeta(backend, kernelName);
      for (const t of Object.values(inputs)) if (t != null) b.adopt(t);
      return impl(inputs, attrs ?? {}, b, kernelName);
    },
  });
  return true;
}

/**
 * Gives 'meta-wasm' the kernels that `registerWasmTrainingKernels()` (src/backend/wasm-kernels.ts)
 * adds to 'wasm' — Conv2DBackpropFilter, a fresh float32 buffer of the filter's shape — so that it
 * mirrors a wasm backend set up for training. Idempotent; returns the names registered by this call.
 */
export function registerMetaWasmTrainingKernels(): string[] {
  wasmIdentityAliases = true;
  const registered: string[] = [];
  for (const kernelName of WASM_TRAINING_KERNELS) {
    wasmExtras.add(kernelName);
    if (registerOne(kernelName, META_WASM_BACKEND_NAME)) registered.push(kernelName);
  }
  return registered;
}
