/**
 * Strided views of torch storages decoded to float32 (what the models take): float16 and bfloat16 exactly,
 * float64 rounded to nearest as `tensor.float()` does, integer types by value. Every decoded array is
 * charged to an AllocationBudget first, so a file whose views overlap (stride 0, many names for one
 * tensor) cannot make the reader allocate more than a bound set from the file's own size.
 */
import { WeightsFileError } from '../../util/errors.js';
import { halfBitsToFloatBits } from '../safetensors.js';
import { ELEMENT_BYTES, type DtypeName, type Storage, type TensorRef } from './torch-globals.js';

/** Bytes a load may allocate for decoded tensors; `used` is what it did. */
export class AllocationBudget {
  used = 0;
  constructor(
    readonly limit: number,
    readonly file: string,
  ) {}
  take(bytes: number, what: string): void {
    if (!(bytes >= 0) || this.used + bytes > this.limit) {
      throw new WeightsFileError(this.file, `${what} would need ${bytes} bytes, beyond the ${this.limit}-byte limit this file's size allows (overlapping or repeated views?)`);
    }
    this.used += bytes;
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The storage's own bytes and the element offset of its start (legacy views point into a root storage). */
function resolve(storage: Storage, file: string): { bytes: Uint8Array; offset: number } {
  if (storage.base) {
    const root = resolve(storage.base.storage, file);
    return { bytes: root.bytes, offset: root.offset + storage.base.offset };
  }
  if (!storage.bytes) throw new WeightsFileError(file, `storage '${storage.key}' has no data in the file`);
  return { bytes: storage.bytes, offset: 0 };
}

type Reader = (element: number) => number;

function reader(bytes: Uint8Array, dtype: DtypeName): Reader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  switch (dtype) {
    case 'float32': return (e) => view.getFloat32(e * 4, true);
    case 'float16': return (e) => { bits[0] = halfBitsToFloatBits(view.getUint16(e * 2, true)); return asFloat[0]!; };
    case 'bfloat16': return (e) => { bits[0] = view.getUint16(e * 2, true) << 16; return asFloat[0]!; };
    case 'float64': return (e) => view.getFloat64(e * 8, true);
    case 'int64': return (e) => Number(view.getBigInt64(e * 8, true));
    case 'int32': return (e) => view.getInt32(e * 4, true);
    case 'int16': return (e) => view.getInt16(e * 2, true);
    case 'int8': return (e) => view.getInt8(e);
    case 'uint8':
    case 'bool': return (e) => view.getUint8(e);
  }
}

/**
 * A NaN read through a float32 value (DataView, Float32Array) may lose its payload bits; float32 and
 * float16/bfloat16 are copied as bit patterns instead so that every value arrives bit-exact.
 */
function bitReader(bytes: Uint8Array, dtype: DtypeName): ((element: number) => number) | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'float32') return (e) => view.getUint32(e * 4, true);
  if (dtype === 'float16') return (e) => halfBitsToFloatBits(view.getUint16(e * 2, true));
  if (dtype === 'bfloat16') return (e) => (view.getUint16(e * 2, true) << 16) >>> 0;
  return null;
}

/** Decodes a tensor (already checked to lie inside its storage) to float32, row-major. */
export function decodeTensor(tensor: TensorRef, budget: AllocationBudget, name: string): Float32Array {
  const { storage, shape, stride } = tensor;
  const count = shape.reduce((a, b) => a * b, 1);
  budget.take(count * 4, `tensor '${name}' (${count} elements)`);
  const { bytes, offset: base } = resolve(storage, budget.file);
  const out = new Float32Array(count);
  if (count === 0) return out;
  const start = base + tensor.offset;
  const elementBytes = ELEMENT_BYTES[storage.dtype];
  // Row-major strides (sizes of 1 may carry any stride) make the view one run of elements.
  let expected = 1;
  let contiguous = true;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) contiguous = false;
    expected *= shape[i]!;
  }
  if (contiguous && storage.dtype === 'float32' && LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes.subarray(start * 4, (start + count) * 4));
    return out;
  }
  if ((start + 1) * elementBytes > bytes.length) throw new WeightsFileError(budget.file, `tensor '${name}' starts past its storage's data`);
  const bitsOf = bitReader(bytes, storage.dtype);
  const valueOf = reader(bytes, storage.dtype);
  const outBits = new Uint32Array(out.buffer);
  const put = bitsOf ? (i: number, e: number) => { outBits[i] = bitsOf(e); } : (i: number, e: number) => { out[i] = valueOf(e); };
  if (contiguous) {
    for (let i = 0; i < count; i++) put(i, start + i);
    return out;
  }
  // A general strided walk: an odometer over the dimensions.
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let element = start;
  for (let i = 0; i < count; i++) {
    put(i, element);
    for (let d = rank - 1; d >= 0; d--) {
      index[d]! += 1;
      element += stride[d]!;
      if (index[d]! < shape[d]!) break;
      element -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}
