import { writeFileAtomic } from '../util/atomic.js';
import { importNodeBuiltin } from '../util/node.js';
import { UsageError } from '../util/errors.js';

/**
 * Reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [u64 little-endian N][N bytes of UTF-8 JSON header][byte buffer]
 *
 * The header maps each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to
 * the start of the byte buffer) plus an optional `"__metadata__": {string: string}`.
 *
 * Validation follows the reference implementation's rules (and is a little stricter about entries), so
 * that a file we accept is one PyTorch's loader accepts, and a corrupt file fails with a message naming
 * the file and the defect rather than with a TypeError or a huge allocation.
 */

/** The floating-point dtypes this reader decodes. Everything else is rejected by name. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export const SUPPORTED_SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16'];

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** One decoded tensor: `data` is always float32, `dtype` is what the file stored. */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** What the writer takes: a float32 tensor in row-major order. */
export interface SafetensorsInputTensor {
  shape: readonly number[];
  data: Float32Array;
}

export type SafetensorsInput =
  | ReadonlyMap<string, SafetensorsInputTensor>
  | Readonly<Record<string, SafetensorsInputTensor>>;

/** The reference implementation's cap; it also keeps a corrupt length from triggering a huge decode. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const ENTRY_KEYS = ['data_offsets', 'dtype', 'shape'];

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(fileName: string, defect: string): never {
  throw new UsageError(`safetensors file '${fileName}': ${defect}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * Product of the dimensions, or `Infinity` once it exceeds `limit`. Dimensions are safe integers but
 * their product need not be, so we stop early instead of trusting a float product; a zero anywhere
 * makes the product zero whatever the other dimensions are.
 */
function boundedProduct(shape: readonly number[], limit: number): number {
  if (shape.includes(0)) return 0;
  let product = 1;
  for (const dim of shape) {
    product *= dim;
    if (product > limit) return Infinity;
  }
  return product;
}

interface PendingTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(fileName: string, name: string, raw: unknown, dataLength: number): PendingTensor {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(raw)) {
    fail(fileName, `${where} must be an object {dtype, shape, data_offsets}, got ${describe(raw)}`);
  }
  for (const key of ENTRY_KEYS) {
    if (!Object.prototype.hasOwnProperty.call(raw, key)) fail(fileName, `${where} has no '${key}' field`);
  }
  const extra = Object.keys(raw).filter((key) => !ENTRY_KEYS.includes(key));
  if (extra.length > 0) {
    fail(fileName, `${where} has unexpected field(s) ${extra.map((k) => JSON.stringify(k)).join(', ')}; allowed: dtype, shape, data_offsets`);
  }

  const dtype = raw.dtype;
  if (typeof dtype !== 'string') fail(fileName, `${where} has dtype ${describe(dtype)}; it must be a string`);
  if (!(SUPPORTED_SAFETENSORS_DTYPES as readonly string[]).includes(dtype)) {
    fail(fileName, `${where} has unsupported dtype ${JSON.stringify(dtype)}; supported: ${SUPPORTED_SAFETENSORS_DTYPES.join(', ')}`);
  }
  const typedDtype = dtype as SafetensorsDtype;

  const shape = raw.shape;
  if (!Array.isArray(shape)) fail(fileName, `${where} has shape ${describe(shape)}; it must be an array`);
  shape.forEach((dim: unknown, axis) => {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      fail(fileName, `${where} has shape[${axis}] = ${describe(dim)}; dimensions must be non-negative integers`);
    }
  });

  const offsets = raw.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    fail(fileName, `${where} has data_offsets ${describe(offsets)}; it must be an array [begin, end]`);
  }
  const [begin, end] = offsets as unknown[];
  for (const [label, value] of [['begin', begin], ['end', end]] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      fail(fileName, `${where} has data_offsets ${label} = ${describe(value)}; offsets must be non-negative integers`);
    }
  }
  const b = begin as number;
  const e = end as number;
  if (b > e) fail(fileName, `${where} has data_offsets [${b}, ${e}] with begin > end`);
  if (e > dataLength) {
    fail(fileName, `${where} has data_offsets [${b}, ${e}] ending past the data buffer (${dataLength} bytes)`);
  }

  const bytesPerElement = DTYPE_BYTES[typedDtype];
  const elements = boundedProduct(shape as number[], Math.floor(dataLength / bytesPerElement) + 1);
  if (elements * bytesPerElement !== e - b) {
    const expected = Number.isFinite(elements) ? `${elements * bytesPerElement} bytes` : 'more bytes than the file has';
    fail(fileName, `${where} (${dtype}, shape [${(shape as number[]).join(', ')}]) needs ${expected} but data_offsets [${b}, ${e}] span ${e - b}`);
  }
  return { name, dtype: typedDtype, shape: [...(shape as number[])], begin: b, end: e };
}

function parseMetadata(fileName: string, raw: unknown): Record<string, string> {
  if (!isPlainObject(raw)) fail(fileName, `'${METADATA_KEY}' must be an object of strings, got ${describe(raw)}`);
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') {
      fail(fileName, `'${METADATA_KEY}' value for ${JSON.stringify(key)} is ${describe(value)}; metadata values must be strings`);
    }
    entries.push([key, value]);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays data rather than a prototype.
  return Object.fromEntries(entries);
}

/** Tensors must tile the buffer exactly, as the reference loader demands: no overlaps and no holes. */
function checkCoverage(fileName: string, pending: PendingTensor[], dataLength: number): void {
  const sorted = [...pending].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = 0;
  let previous: PendingTensor | undefined;
  for (const tensor of sorted) {
    if (tensor.begin < cursor && previous !== undefined) {
      fail(fileName, `tensors ${JSON.stringify(previous.name)} [${previous.begin}, ${previous.end}] and ${JSON.stringify(tensor.name)} [${tensor.begin}, ${tensor.end}] overlap`);
    }
    if (tensor.begin > cursor) {
      fail(fileName, `bytes [${cursor}, ${tensor.begin}) of the data buffer belong to no tensor`);
    }
    cursor = tensor.end;
    previous = tensor;
  }
  if (cursor !== dataLength) {
    fail(fileName, `bytes [${cursor}, ${dataLength}) at the end of the data buffer belong to no tensor`);
  }
}

function decodeF32(bytes: Uint8Array, begin: number, count: number): Float32Array {
  // Copying bytes (not values) keeps NaN payloads and -0 bit-exact and works for unaligned offsets.
  const out = new Float32Array(count);
  const outBytes = new Uint8Array(out.buffer);
  outBytes.set(bytes.subarray(begin, begin + count * 4));
  if (!LITTLE_ENDIAN_HOST) {
    for (let i = 0; i < outBytes.length; i += 4) {
      const a = outBytes[i]!;
      const b = outBytes[i + 1]!;
      outBytes[i] = outBytes[i + 3]!;
      outBytes[i + 1] = outBytes[i + 2]!;
      outBytes[i + 2] = b;
      outBytes[i + 3] = a;
    }
  }
  return out;
}

/** IEEE binary16 bits to binary32 bits; exact for every input, NaN payloads included. */
export function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal half: shift the leading one up to the implicit-bit position, lowering the exponent.
  let e = -14;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    e -= 1;
  }
  return (sign | ((e + 127) << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

function decode16(bytes: Uint8Array, begin: number, count: number, dtype: 'F16' | 'BF16'): Float32Array {
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0, o = begin; i < count; i += 1, o += 2) {
    const h = bytes[o]! | (bytes[o + 1]! << 8);
    bits[i] = dtype === 'BF16' ? (h << 16) >>> 0 : halfBitsToFloatBits(h);
  }
  return out;
}

/** Parses a whole safetensors file held in memory. `fileName` only labels error messages. */
export function parseSafetensors(bytes: Uint8Array, fileName = '<buffer>'): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) {
    throw new UsageError(`parseSafetensors: bytes must be a Uint8Array, got ${describe(bytes)}`);
  }
  if (bytes.length < 8) fail(fileName, `is ${bytes.length} bytes long; a safetensors file has at least an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength64 = view.getBigUint64(0, true);
  if (headerLength64 === 0n) fail(fileName, 'header length is 0; the header must hold at least "{}"');
  if (headerLength64 > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    fail(fileName, `header length ${headerLength64} exceeds the limit of ${MAX_SAFETENSORS_HEADER_BYTES} bytes`);
  }
  const headerLength = Number(headerLength64);
  if (8 + headerLength > bytes.length) {
    fail(fileName, `header length ${headerLength} runs past the end of the file (${bytes.length - 8} bytes after the length field)`);
  }

  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    fail(fileName, 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    fail(fileName, `header is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isPlainObject(header)) fail(fileName, `header must be a JSON object, got ${describe(header)}`);

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const pending: PendingTensor[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(fileName, raw);
    } else {
      pending.push(parseEntry(fileName, name, raw, dataLength));
    }
  }
  checkCoverage(fileName, pending, dataLength);

  // Every size below was checked against the real buffer, so these allocations are bounded by the file.
  const tensors = new Map<string, SafetensorsTensor>();
  for (const t of pending) {
    const count = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
    const begin = dataStart + t.begin;
    const data = t.dtype === 'F32' ? decodeF32(bytes, begin, count) : decode16(bytes, begin, count, t.dtype);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata };
}

/** Reads a safetensors file from a path, or parses bytes already in memory. */
export async function readSafetensors(source: string | Uint8Array): Promise<SafetensorsFile> {
  if (typeof source === 'string') {
    let bytes: Uint8Array;
    // node:fs at call time: bytes in memory (a browser's) need no file system.
    const { readFile } = await importNodeBuiltin<typeof import('node:fs/promises')>('node:fs/promises', `reading '${source}'`);
    try {
      bytes = await readFile(source);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new UsageError(`safetensors file '${source}': cannot be read (${reason})`);
    }
    return parseSafetensors(bytes, source);
  }
  if (source instanceof Uint8Array) return parseSafetensors(source);
  throw new UsageError(`readSafetensors: source must be a file path or a Uint8Array, got ${describe(source)}`);
}

function inputEntries(tensors: SafetensorsInput): [string, SafetensorsInputTensor][] {
  if (tensors instanceof Map) return [...(tensors as ReadonlyMap<string, SafetensorsInputTensor>).entries()];
  if (isPlainObject(tensors)) return Object.entries(tensors as Record<string, SafetensorsInputTensor>);
  throw new UsageError(`encodeSafetensors: tensors must be a Map or an object of {shape, data}, got ${describe(tensors)}`);
}

function validateInput(name: string, tensor: unknown): SafetensorsInputTensor {
  const where = `encodeSafetensors: tensor ${JSON.stringify(name)}`;
  if (name === METADATA_KEY) throw new UsageError(`${where}: the name ${METADATA_KEY} is reserved for metadata`);
  if (!isPlainObject(tensor)) throw new UsageError(`${where} must be {shape, data}, got ${describe(tensor)}`);
  const { shape, data } = tensor;
  if (!Array.isArray(shape) || !shape.every((d: unknown) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new UsageError(`${where} has shape ${JSON.stringify(shape)}; it must be an array of non-negative integers`);
  }
  if (!(data instanceof Float32Array)) throw new UsageError(`${where} has data ${describe(data)}; it must be a Float32Array`);
  const elements = boundedProduct(shape as number[], data.length);
  if (elements !== data.length) {
    throw new UsageError(`${where} has shape [${(shape as number[]).join(', ')}] but ${data.length} values`);
  }
  return { shape: shape as number[], data };
}

/**
 * Encodes float32 tensors as a safetensors file: names sorted, header padded with spaces so the byte
 * buffer starts 8-byte aligned (as the reference writer does), values little-endian and bit-exact.
 */
export function encodeSafetensors(tensors: SafetensorsInput, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const entries = inputEntries(tensors).map(([name, t]) => [name, validateInput(name, t)] as const);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  // Built by hand rather than with JSON.stringify on an object, which would move integer-like names
  // (e.g. "0") ahead of the others and break the sorted, offset-ordered layout.
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new UsageError(`encodeSafetensors: metadata must be an object of strings, got ${describe(metadata)}`);
    const items = Object.entries(metadata).map(([key, value]) => {
      if (typeof value !== 'string') {
        throw new UsageError(`encodeSafetensors: metadata value for ${JSON.stringify(key)} is ${describe(value)}; it must be a string`);
      }
      return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    });
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${items.join(',')}}`);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const end = offset + t.data.length * 4;
    parts.push(`${JSON.stringify(name)}:{"dtype":"F32","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const headerBytes = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = headerBytes.length + ((8 - (headerBytes.length % 8)) % 8);
  if (padded > MAX_SAFETENSORS_HEADER_BYTES) {
    throw new UsageError(`encodeSafetensors: the header would be ${padded} bytes, over the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit readers enforce`);
  }

  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(headerBytes, 8);
  out.fill(0x20, 8 + headerBytes.length, 8 + padded);
  let cursor = 8 + padded;
  for (const [, t] of entries) {
    const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(src, cursor);
    if (!LITTLE_ENDIAN_HOST) {
      for (let i = cursor; i < cursor + src.length; i += 4) {
        const a = out[i]!;
        const b = out[i + 1]!;
        out[i] = out[i + 3]!;
        out[i + 1] = out[i + 2]!;
        out[i + 2] = b;
        out[i + 3] = a;
      }
    }
    cursor += src.length;
  }
  return out;
}

/** Encodes and writes atomically, so a reader never sees a half-written file. */
export async function writeSafetensors(
  path: string,
  tensors: SafetensorsInput,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new UsageError(`writeSafetensors: path must be a non-empty string, got ${describe(path)}`);
  }
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
