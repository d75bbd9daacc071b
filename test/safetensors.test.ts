import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MAX_SAFETENSORS_HEADER_BYTES,
  SUPPORTED_SAFETENSORS_DTYPES,
  encodeSafetensors,
  halfBitsToFloatBits,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
  type SafetensorsFile,
} from '../src/weights/safetensors.js';

const FILE = 'fixture.safetensors';

/** Builds a file from a header (object or raw text) and data bytes, optionally lying about the length. */
function makeFile(header: unknown, data: Uint8Array | number[] = [], headerLength?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const headerBytes = new TextEncoder().encode(text);
  return concatHeaderBytes(headerBytes, data, headerLength);
}

function concatHeaderBytes(headerBytes: Uint8Array, data: Uint8Array | number[], headerLength?: bigint): Uint8Array {
  const body = data instanceof Uint8Array ? data : Uint8Array.from(data);
  const out = new Uint8Array(8 + headerBytes.length + body.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(body, 8 + headerBytes.length);
  return out;
}

function f32Entry(shape: number[], begin: number, end: number): Record<string, unknown> {
  return { dtype: 'F32', shape, data_offsets: [begin, end] };
}

function bitsOf(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

function expectParseError(bytes: Uint8Array, ...fragments: string[]): void {
  let caught: unknown;
  try {
    parseSafetensors(bytes, FILE);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected an error mentioning ${fragments.join(' / ')}`).toBeInstanceOf(Error);
  const message = (caught as Error).message;
  expect(message).toContain(FILE);
  for (const fragment of fragments) expect(message).toContain(fragment);
}

function fromBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

const tempDirs: string[] = [];
afterAll(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

describe('round trip', () => {
  it('is bit-exact for F32, including NaN payloads, -0, infinities and subnormals', () => {
    const special = fromBits([
      0x7fc00000, 0x7fc00001, 0xffc12345, 0x7f800001, 0x7fbfffff, 0x80000000, 0x00000000, 0x7f800000,
      0xff800000, 0x00000001, 0x807fffff, 0x3f800000, 0xc2f6e979, 0x7f7fffff,
    ]);
    const tensors = new Map([
      ['special', { shape: [2, 7], data: special }],
      ['scalar', { shape: [] as number[], data: Float32Array.of(3.25) }],
      ['empty', { shape: [0, 3], data: new Float32Array(0) }],
      ['10', { shape: [2], data: Float32Array.of(1, 2) }],
      ['2', { shape: [1, 1, 1], data: Float32Array.of(-7) }],
      ['ünïcode.名前', { shape: [3], data: Float32Array.of(0.1, 0.2, 0.3) }],
    ]);
    const metadata = { format: 'pt', note: 'quotes " and \\ and \n newline', __proto__x: 'y' };
    const bytes = encodeSafetensors(tensors, metadata);
    const parsed = parseSafetensors(bytes, FILE);

    expect([...parsed.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, original] of tensors) {
      const got = parsed.tensors.get(name)!;
      expect(got.dtype).toBe('F32');
      expect(got.shape).toEqual(original.shape);
      expect(bitsOf(got.data)).toEqual(bitsOf(original.data));
    }
    expect(parsed.metadata).toEqual(metadata);
    // Re-encoding what we read gives the same bytes: the layout is canonical.
    expect(encodeSafetensors(parsed.tensors, parsed.metadata)).toEqual(bytes);
  });

  it('writes the reference layout: aligned, space-padded header, sorted names, contiguous offsets', () => {
    const bytes = encodeSafetensors({ b: { shape: [1], data: Float32Array.of(2) }, a: { shape: [2], data: Float32Array.of(1, 1.5) } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header).toBe(
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}'.padEnd(n, ' '),
    );
    expect(Array.from(bytes.subarray(8 + n))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0xc0, 0x3f, 0, 0, 0, 0x40]);
  });

  it('puts metadata first and keeps a "__proto__" metadata key as plain data', () => {
    const text = '{"__metadata__":{"__proto__":"p","k":"v"},"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}';
    const parsed = parseSafetensors(makeFile(text, [0, 0, 0x80, 0x3f]), FILE);
    expect(Object.keys(parsed.metadata)).toEqual(['__proto__', 'k']);
    expect(parsed.metadata['__proto__']).toBe('p');
    expect(Object.getPrototypeOf(parsed.metadata)).toBe(Object.prototype);
    const again = encodeSafetensors(parsed.tensors, parsed.metadata);
    const n = Number(new DataView(again.buffer).getBigUint64(0, true));
    expect(new TextDecoder().decode(again.subarray(8, 8 + n)).trimEnd()).toBe(text);
  });

  it('reads data at unaligned offsets and with a header that is not padded', () => {
    // An unpadded header, viewed from an odd byte offset, puts the float data at unaligned addresses.
    const header = '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const data = new Uint8Array(new Float32Array([1.5, -2]).buffer);
    const inner = makeFile(header, data);
    const shifted = new Uint8Array(inner.length + 3);
    shifted.set(inner, 3);
    const parsed = parseSafetensors(shifted.subarray(3), FILE);
    expect(Array.from(parsed.tensors.get('t')!.data)).toEqual([1.5, -2]);
  });

  it('reads an empty file {} and writes one', () => {
    const parsed = parseSafetensors(makeFile('{}'), FILE);
    expect(parsed.tensors.size).toBe(0);
    expect(parsed.metadata).toEqual({});
    expect(parseSafetensors(encodeSafetensors(new Map())).tensors.size).toBe(0);
  });

  it('writes atomically to disk and reads back by path', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'safetensors-'));
    tempDirs.push(dir);
    const target = path.join(dir, 'nested', 'w.safetensors');
    const data = Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3);
    await writeSafetensors(target, { w: { shape: [2, 3, 4], data } }, { k: 'v' });
    const read: SafetensorsFile = await readSafetensors(target);
    expect(read.tensors.get('w')!.shape).toEqual([2, 3, 4]);
    expect(Array.from(read.tensors.get('w')!.data)).toEqual(Array.from(data));
    expect(read.metadata).toEqual({ k: 'v' });
    expect(await readFile(target)).toEqual(Buffer.from(encodeSafetensors({ w: { shape: [2, 3, 4], data } }, { k: 'v' })));
    const fromBytes = await readSafetensors(new Uint8Array(await readFile(target)));
    expect(Array.from(fromBytes.tensors.get('w')!.data)).toEqual(Array.from(data));
  });

  it('names the path when a file cannot be read', async () => {
    const missing = path.join(tmpdir(), 'definitely-missing-dir-xyz', 'nope.safetensors');
    await expect(readSafetensors(missing)).rejects.toThrow(/nope\.safetensors.*cannot be read/);
  });
});

describe('F16 and BF16 decoding', () => {
  function encode16(dtype: 'F16' | 'BF16', halves: number[]): Uint8Array {
    const data = new Uint8Array(halves.length * 2);
    halves.forEach((h, i) => {
      data[2 * i] = h & 0xff;
      data[2 * i + 1] = h >> 8;
    });
    return makeFile({ x: { dtype, shape: [halves.length], data_offsets: [0, data.length] } }, data);
  }

  it('decodes F16 normals, subnormals, zeros, infinities and NaN', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x03ff, 1023 * 2 ** -24],
      [0x0200, 2 ** -15],
      [0x0001, 2 ** -24],
      [0x8001, -(2 ** -24)],
      [0x0000, 0],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    const parsed = parseSafetensors(encode16('F16', [...cases.map(([h]) => h), 0x8000, 0x7e00, 0xfe01]), FILE);
    const x = parsed.tensors.get('x')!;
    expect(x.dtype).toBe('F16');
    expect(x.shape).toEqual([cases.length + 3]);
    cases.forEach(([, value], i) => expect(x.data[i]).toBe(value));
    expect(Object.is(x.data[cases.length], -0)).toBe(true);
    expect(Number.isNaN(x.data[cases.length + 1])).toBe(true);
    // NaN payload bits carry over: 0xfe01 -> sign, all-ones exponent, mantissa 0x201 << 13.
    expect(bitsOf(x.data)[cases.length + 2]).toBe(0xffc02000);
  });

  it('decodes every one of the 65536 half values like the IEEE formula', () => {
    const out = new Float32Array(1);
    const bits = new Uint32Array(out.buffer);
    for (let h = 0; h < 0x10000; h += 1) {
      const sign = h & 0x8000 ? -1 : 1;
      const exponent = (h >> 10) & 0x1f;
      const mantissa = h & 0x3ff;
      bits[0] = halfBitsToFloatBits(h);
      if (exponent === 0x1f) {
        expect(mantissa === 0 ? out[0] === sign * Infinity : Number.isNaN(out[0])).toBe(true);
      } else {
        const value = exponent === 0 ? sign * mantissa * 2 ** -24 : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
        if (out[0] !== value || (value === 0 && Object.is(out[0], -0) !== (sign < 0))) {
          throw new Error(`half 0x${h.toString(16)} decoded to ${out[0]}, expected ${value}`);
        }
      }
    }
  });

  it('decodes BF16 including subnormals, infinities and NaN', () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc040, -3],
      [0x3eaa, 0.33203125],
      [0x7f7f, 3.3895313892515355e38],
      [0x0080, 2 ** -126],
      [0x0001, 2 ** -133],
      [0x007f, 127 * 2 ** -133],
      [0x7f80, Infinity],
      [0xff80, -Infinity],
    ];
    const parsed = parseSafetensors(encode16('BF16', [...cases.map(([h]) => h), 0x8000, 0x7fc1]), FILE);
    const x = parsed.tensors.get('x')!;
    expect(x.dtype).toBe('BF16');
    cases.forEach(([, value], i) => expect(x.data[i]).toBe(value));
    expect(Object.is(x.data[cases.length], -0)).toBe(true);
    expect(bitsOf(x.data)[cases.length + 1]).toBe(0x7fc10000);
  });

  it('mixes dtypes in one file', () => {
    const data = [0, 0x3c, 0x80, 0x3f, 0, 0, 0x20, 0x41];
    const header = {
      h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
      b: { dtype: 'BF16', shape: [1], data_offsets: [2, 4] },
      f: f32Entry([1], 4, 8),
    };
    const parsed = parseSafetensors(makeFile(header, data), FILE);
    expect(parsed.tensors.get('h')!.data[0]).toBe(1);
    expect(parsed.tensors.get('b')!.data[0]).toBe(1);
    expect(parsed.tensors.get('f')!.data[0]).toBe(10);
  });
});

describe('validation', () => {
  const four = [0, 0, 0x80, 0x3f];

  it('rejects files too short to hold the length', () => {
    expectParseError(new Uint8Array(5), '5 bytes', 'at least an 8-byte');
    expectParseError(new Uint8Array(0), '0 bytes');
  });

  it('rejects bad header lengths', () => {
    expectParseError(makeFile('{}', [], 0n), 'header length is 0');
    expectParseError(makeFile('{}', [], BigInt(MAX_SAFETENSORS_HEADER_BYTES) + 1n), 'exceeds the limit');
    expectParseError(makeFile('{}', [], 2n ** 64n - 1n), 'exceeds the limit');
    expectParseError(makeFile('{}', [], 50n), 'header length 50 runs past the end');
  });

  it('rejects a header that is not UTF-8, not JSON or not an object', () => {
    expectParseError(concatHeaderBytes(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d), []), 'not valid UTF-8');
    expectParseError(makeFile('{"a": '), 'not valid JSON');
    expectParseError(makeFile('[1, 2]'), 'must be a JSON object', 'an array');
    expectParseError(makeFile('null'), 'must be a JSON object', 'null');
    expectParseError(makeFile('42'), 'must be a JSON object');
    expectParseError(makeFile('"str"'), 'must be a JSON object');
  });

  it('rejects malformed entries', () => {
    expectParseError(makeFile({ a: 5 }), '"a"', 'must be an object');
    expectParseError(makeFile({ a: null }), '"a"', 'must be an object');
    expectParseError(makeFile({ a: { dtype: 'F32', shape: [1] } }, four), "no 'data_offsets'");
    expectParseError(makeFile({ a: { shape: [1], data_offsets: [0, 4] } }, four), "no 'dtype'");
    expectParseError(makeFile({ a: { ...f32Entry([1], 0, 4), extra: 1 } }, four), 'unexpected field', '"extra"');
  });

  it('rejects unsupported dtypes, naming them and listing the supported ones', () => {
    expectParseError(makeFile({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), 'unsupported dtype "I64"', 'F32, F16, BF16');
    expectParseError(makeFile({ a: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, four), 'unsupported dtype "f32"');
    expectParseError(makeFile({ a: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, four), 'dtype number 4');
    expect(SUPPORTED_SAFETENSORS_DTYPES).toEqual(['F32', 'F16', 'BF16']);
  });

  it('rejects bad shapes', () => {
    expectParseError(makeFile({ a: f32Entry(-1 as unknown as number[], 0, 4) }, four), 'shape number -1', 'must be an array');
    for (const [dim, shown] of [[-1, 'number -1'], [1.5, 'number 1.5'], ['2', 'the string "2"'], [2 ** 53, 'number 9007199254740992'], [null, 'null']] as const) {
      expectParseError(makeFile({ a: f32Entry([1, dim as number], 0, 4) }, four), `shape[1] = ${shown}`, 'non-negative integers');
    }
  });

  it('rejects bad offsets', () => {
    expectParseError(makeFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, four), 'data_offsets an array of length 1', '[begin, end]');
    expectParseError(makeFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }, four), '[begin, end]');
    expectParseError(makeFile({ a: { dtype: 'F32', shape: [1], data_offsets: '0,4' } }, four), '[begin, end]');
    expectParseError(makeFile({ a: f32Entry([1], 0.5, 4) }, four), 'begin = number 0.5', 'non-negative integers');
    expectParseError(makeFile({ a: f32Entry([1], -4, 0) }, four), 'begin = number -4');
    expectParseError(makeFile({ a: f32Entry([1], 0, 1e300) }, four), 'end = number 1e+300');
    expectParseError(makeFile({ a: f32Entry([1], 4, 0) }, four), '[4, 0] with begin > end');
    expectParseError(makeFile({ a: f32Entry([1], 0, 8) }, four), 'ending past the data buffer (4 bytes)');
  });

  it('rejects a byte size that does not match the shape, without allocating for a huge shape', () => {
    expectParseError(makeFile({ a: f32Entry([2], 0, 4) }, four), 'needs 8 bytes', 'span 4');
    expectParseError(makeFile({ a: { dtype: 'F16', shape: [1], data_offsets: [0, 4] } }, four), 'needs 2 bytes');
    expectParseError(makeFile({ a: f32Entry([2 ** 52, 2 ** 52, 3], 0, 4) }, four), 'more bytes than the file has');
    // A zero dimension makes the tensor empty whatever the others are.
    const empty = parseSafetensors(makeFile({ a: f32Entry([2 ** 52, 0], 0, 0), b: f32Entry([1], 0, 4) }, four), FILE);
    expect(empty.tensors.get('a')!.data.length).toBe(0);
  });

  it('rejects overlapping tensors and holes in the data buffer', () => {
    const eight = new Uint8Array(8);
    expectParseError(makeFile({ a: f32Entry([2], 0, 8), b: f32Entry([1], 4, 8) }, eight), '"a" [0, 8]', '"b" [4, 8]', 'overlap');
    expectParseError(makeFile({ a: f32Entry([1], 0, 4), b: f32Entry([1], 0, 4) }, four), 'overlap');
    expectParseError(makeFile({ a: f32Entry([1], 4, 8) }, eight), 'bytes [0, 4) of the data buffer belong to no tensor');
    expectParseError(makeFile({ a: f32Entry([1], 0, 4) }, eight), 'bytes [4, 8) at the end');
    expectParseError(makeFile({}, four), 'bytes [0, 4) at the end');
    expectParseError(makeFile({ a: f32Entry([2], 0, 8), z: f32Entry([0], 4, 4) }, eight), 'overlap');
  });

  it('rejects metadata that is not an object of strings', () => {
    expectParseError(makeFile({ __metadata__: 'x' }), "'__metadata__' must be an object", 'the string "x"');
    expectParseError(makeFile({ __metadata__: ['a'] }), "'__metadata__' must be an object");
    expectParseError(makeFile({ __metadata__: { a: 'ok', b: 3 } }), 'value for "b" is number 3');
  });

  it('rejects bad writer input', () => {
    expect(() => encodeSafetensors({ a: { shape: [3], data: new Float32Array(2) } })).toThrow(/"a" has shape \[3\] but 2 values/);
    expect(() => encodeSafetensors({ a: { shape: [2], data: [1, 2] as unknown as Float32Array } })).toThrow(/"a".*must be a Float32Array/);
    expect(() => encodeSafetensors({ a: { shape: [-2], data: new Float32Array(0) } })).toThrow(/"a" has shape \[-2\]/);
    expect(() => encodeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } })).toThrow(/reserved/);
    expect(() => encodeSafetensors({}, { a: 1 as unknown as string })).toThrow(/metadata value for "a"/);
    expect(() => encodeSafetensors(null as unknown as Map<string, never>)).toThrow(/tensors must be a Map/);
  });
});

describe('fuzz', () => {
  /** mulberry32: a tiny seeded PRNG so every run mutates the same way. */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function seeds(): Uint8Array[] {
    const mixed = makeFile(
      {
        __metadata__: { format: 'pt' },
        h: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] },
        b: { dtype: 'BF16', shape: [3], data_offsets: [8, 14] },
        f: f32Entry([2, 1], 14, 22),
        e: f32Entry([0, 5], 22, 22),
      },
      Uint8Array.from({ length: 22 }, (_, i) => (i * 37) & 0xff),
    );
    return [
      encodeSafetensors({ w: { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i - 6) }, s: { shape: [], data: Float32Array.of(1) } }, { k: 'v' }),
      encodeSafetensors({ 'layer.0.weight': { shape: [2, 2, 1, 1], data: Float32Array.of(1, 2, 3, 4) } }),
      mixed,
    ];
  }

  const interesting = ['0', '1', '9', '-', '.', 'e', '{', '}', '[', ']', '"', ',', ':', ' ', 'F', 'n', '\\', '\u00e9'];
  const replacements: unknown[] = [0, -1, 1.5, 2 ** 53, 1e308, 'F64', 'F16', 'BF16', null, [], [1], [0, 1, 2], {}, true, '4', 3, 8, 100000000];

  function mutate(base: Uint8Array, random: () => number): Uint8Array {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const headerLength = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
    switch (Math.floor(random() * 5)) {
      case 0:
        return base.slice(0, Math.floor(random() * base.length));
      case 1: {
        const out = base.slice();
        for (let k = 1 + Math.floor(random() * 4); k > 0; k -= 1) out[Math.floor(random() * out.length)] = Math.floor(random() * 256);
        return out;
      }
      case 2: {
        // Character-level edits inside the header keep the length field honest so the JSON path is hit.
        const text = new TextDecoder().decode(base.subarray(8, 8 + headerLength));
        const at = Math.floor(random() * text.length);
        const edited = random() < 0.5 ? text.slice(0, at) + pick(interesting) + text.slice(at + 1) : text.slice(0, at) + pick(interesting) + text.slice(at);
        return concatHeaderBytes(new TextEncoder().encode(edited), base.subarray(8 + headerLength));
      }
      case 3: {
        // Structural edits: replace one field of one entry with an arbitrary JSON value.
        const header = JSON.parse(new TextDecoder().decode(base.subarray(8, 8 + headerLength))) as Record<string, Record<string, unknown>>;
        const name = pick(Object.keys(header));
        const entry = header[name]!;
        const field = pick([...Object.keys(entry), 'extra']);
        const replacement = pick(replacements);
        if (Array.isArray(entry[field]) && random() < 0.5) {
          const copy = [...(entry[field] as unknown[])];
          copy[Math.floor(random() * Math.max(copy.length, 1))] = replacement;
          entry[field] = copy;
        } else {
          entry[field] = replacement;
        }
        return concatHeaderBytes(new TextEncoder().encode(JSON.stringify(header)), base.subarray(8 + headerLength));
      }
      default: {
        const out = base.slice();
        new DataView(out.buffer).setBigUint64(0, BigInt(Math.floor(random() * (base.length + 16))), true);
        return out;
      }
    }
  }

  it('either parses consistently or throws an Error naming the file, for thousands of variants', () => {
    const random = prng(20240531);
    const bases = seeds();
    for (const base of bases) expect(() => parseSafetensors(base, FILE)).not.toThrow();
    let parsedCount = 0;
    let failedCount = 0;
    const started = performance.now();
    for (let round = 0; round < 10000; round += 1) {
      const variant = mutate(bases[round % bases.length]!, random);
      let result: SafetensorsFile | undefined;
      try {
        result = parseSafetensors(variant, FILE);
      } catch (error) {
        if (!(error instanceof Error) || error instanceof TypeError || !error.message.includes(FILE)) {
          throw new Error(`variant ${round} threw ${String(error)}`);
        }
        failedCount += 1;
        continue;
      }
      parsedCount += 1;
      for (const [name, tensor] of result.tensors) {
        const elements = tensor.shape.reduce((a, b) => a * b, 1);
        if (!(tensor.data instanceof Float32Array) || tensor.data.length !== elements || !SUPPORTED_SAFETENSORS_DTYPES.includes(tensor.dtype)) {
          throw new Error(`variant ${round}: tensor ${name} is inconsistent`);
        }
      }
      for (const value of Object.values(result.metadata)) expect(typeof value).toBe('string');
    }
    // Both outcomes must actually occur, or the mutations are not exercising the parser.
    expect(parsedCount).toBeGreaterThan(200);
    expect(failedCount).toBeGreaterThan(5000);
    // A generous bound: the point is that no variant makes the parser hang or crawl.
    expect(performance.now() - started).toBeLessThan(10000);
  });
});
