/** The meta backend itself: shapes and dtypes per data id, reference counts mirroring the cpu backend's. */
import * as tf from '@tensorflow/tfjs';
import { assertMetaFlavor, FLAVORS, traitsOf, type FlavorTraits, type MetaFlavor } from './flavors.js';

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

export function describeShape(shape: number[]): string {
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
    assertMetaFlavor('MetaBackend', flavor);
    this.flavor = flavor;
    this.backendName = FLAVORS[flavor].backendName;
    this.store = new tf.DataStorage<MetaTensorData>(this, tf.engine());
  }

  /** How the mirrored backend's kernels alias, type and check (see flavors.ts); kernels consult only this. */
  get traits(): FlavorTraits {
    return traitsOf(this.flavor);
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
