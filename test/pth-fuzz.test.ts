/**
 * Fuzz (fixed seed): 500 mutations of PyTorch-written .pth files — bytes flipped, the file cut short, zip
 * directory and header fields altered, length fields set to boundary values, and bytes flipped inside
 * data.pkl with its CRC-32 recomputed (so that the unpickler, not the CRC check, meets the damage). Each one
 * loads or fails with our WeightsFileError (never a RangeError, TypeError or hang), and a load that succeeds
 * decodes no more bytes than the file holds: the decoding budget is set to the mutated file's own length.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createRng, type Rng } from '../src/util/rng.js';
import { WeightsFileError } from '../src/util/errors.js';
import { parseTorchCheckpoint } from '../src/weights/pth/torch-load.js';
import { crc32, readZip } from '../src/weights/pth/zip.js';

const PTH = fileURLToPath(new URL('./fixtures/pth/', import.meta.url));
const SOURCES = ['zip.pth', 'legacy-names.pth', 'views.pth', 'module-legacy.pth', 'float16.pth', 'nested.pth'];
const ITERATIONS = 500;

const BOUNDARIES = [0, 1, 0x7f, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff];

function signatures(bytes: Uint8Array, signature: number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at: number[] = [];
  for (let i = 0; i + 4 <= bytes.length; i++) if (view.getUint32(i, true) === signature) at.push(i);
  return at;
}

type Mutation = (bytes: Uint8Array, rng: Rng) => { bytes: Uint8Array; what: string };

const MUTATIONS: Mutation[] = [
  (bytes, rng) => {
    const out = bytes.slice();
    const n = 1 + rng.int(8);
    for (let i = 0; i < n; i++) out[rng.int(out.length)] = rng.int(256);
    return { bytes: out, what: `${n} bytes flipped` };
  },
  (bytes, rng) => {
    const length = rng.int(bytes.length);
    return { bytes: bytes.slice(0, length), what: `cut to ${length} bytes` };
  },
  (bytes, rng) => {
    // A 16-, 32- or 64-bit field anywhere set to a boundary value or beyond the file: lengths, counts, offsets.
    const out = bytes.slice();
    const view = new DataView(out.buffer);
    const at = rng.int(Math.max(1, out.length - 8));
    const value = rng.next() < 0.5 ? BOUNDARIES[rng.int(BOUNDARIES.length)]! : out.length + rng.int(1000) - 500;
    const width = [2, 4, 8][rng.int(3)]!;
    if (width === 2) view.setUint16(at, value & 0xffff, true);
    else if (width === 4) view.setUint32(at, value >>> 0, true);
    else view.setBigUint64(at, BigInt(Math.max(0, value)) << BigInt(rng.int(2) * 32), true);
    return { bytes: out, what: `${width * 8}-bit field at ${at} set to ${value}` };
  },
  (bytes, rng) => {
    // A zip field: in a central directory entry or a local header, the sizes, offsets, name lengths, method or CRC.
    const out = bytes.slice();
    const view = new DataView(out.buffer);
    const central = signatures(out, 0x02014b50);
    const local = signatures(out, 0x04034b50);
    if (central.length === 0) return { bytes: out, what: 'not a zip: unchanged' };
    const useCentral = rng.next() < 0.6;
    const base = useCentral ? central[rng.int(central.length)]! : local[rng.int(local.length)]!;
    const fields = useCentral ? [10, 16, 20, 24, 28, 30, 32, 42] : [8, 14, 18, 22, 26, 28];
    const field = fields[rng.int(fields.length)]!;
    const value = BOUNDARIES[rng.int(BOUNDARIES.length)]! ^ (rng.next() < 0.3 ? rng.int(64) : 0);
    const is16 = useCentral ? [10, 28, 30, 32].includes(field) : [8, 26, 28].includes(field);
    if (is16) view.setUint16(base + field, value & 0xffff, true);
    else view.setUint32(base + field, value >>> 0, true);
    return { bytes: out, what: `zip ${useCentral ? 'central' : 'local'} field +${field} at ${base} set to ${value}` };
  },
  (bytes, rng) => {
    // Damage inside data.pkl (or a storage) with the CRC-32 fixed up in both headers.
    let entries;
    try {
      entries = [...readZip(bytes, 'x').values()];
    } catch {
      return { bytes: bytes.slice(), what: 'not a zip: unchanged' };
    }
    const pickle = entries.find((e) => e.name.endsWith('data.pkl'))!;
    const entry = rng.next() < 0.8 ? pickle : entries[rng.int(entries.length)]!;
    const out = bytes.slice();
    const start = entry.data.byteOffset - bytes.byteOffset;
    const n = 1 + rng.int(4);
    for (let i = 0; i < n && entry.data.length > 0; i++) out[start + rng.int(entry.data.length)] = rng.int(256);
    const crc = crc32(out.subarray(start, start + entry.data.length));
    const view = new DataView(out.buffer);
    for (const at of signatures(out, 0x02014b50)) if (view.getUint32(at + 16, true) === entry.crc32) view.setUint32(at + 16, crc, true);
    for (const at of signatures(out, 0x04034b50)) if (view.getUint32(at + 14, true) === entry.crc32) view.setUint32(at + 14, crc, true);
    return { bytes: out, what: `${n} bytes flipped in ${entry.name}, CRC fixed` };
  },
];

describe('fuzzed .pth files', () => {
  it(`${ITERATIONS} mutations (seed 21): each loads within its own size or throws WeightsFileError`, () => {
    const rng = createRng(21);
    const sources = SOURCES.map((name) => ({ name, bytes: new Uint8Array(readFileSync(`${PTH}${name}`)) }));
    const outcomes = { loaded: 0, refused: 0 };
    const started = Date.now();
    for (let i = 0; i < ITERATIONS; i++) {
      const source = sources[rng.int(sources.length)]!;
      const { bytes, what } = MUTATIONS[i % MUTATIONS.length]!(source.bytes, rng);
      const label = `#${i} ${source.name}: ${what}`;
      try {
        const tensors = parseTorchCheckpoint(bytes, label, { maxDecodedBytes: bytes.length });
        let decoded = 0;
        for (const t of tensors.values()) {
          expect(t.data.length, label).toBe(t.shape.reduce((a, b) => a * b, 1));
          decoded += t.data.byteLength;
        }
        expect(decoded, label).toBeLessThanOrEqual(bytes.length);
        outcomes.loaded += 1;
      } catch (error) {
        if (!(error instanceof WeightsFileError)) throw new Error(`${label}: threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
        expect(error.message, label).toContain(label);
        outcomes.refused += 1;
      }
    }
    // Both outcomes occur (a fuzzer whose every file fails at the first check tests little).
    expect(outcomes.loaded).toBeGreaterThan(10);
    expect(outcomes.refused).toBeGreaterThan(250);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
