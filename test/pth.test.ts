/**
 * PyTorch checkpoints read without Python: every fixture torch.save wrote (scripts/make_pth_fixtures.py,
 * PyTorch 1.13) gives, bit for bit, the tensors of the safetensors route; malicious pickles are refused with
 * nothing run; hand-made files cover what PyTorch will not write (oversized storages, views past their
 * storage, forbidden globals, zip64, data descriptors).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDenseNet } from '../src/layers/index.js';
import { initBackend } from '../src/backend/index.js';
import { trainDenseNet } from '../src/train/index.js';
import { checkPretrained } from '../src/train/settings.js';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';
import { UnsafePickleError, UsageError, WeightsFileError } from '../src/util/errors.js';
import { parseTorchCheckpoint } from '../src/weights/pth/torch-load.js';
import { hashPrefixOf, parseStateDict } from '../src/weights/state-dict.js';
import { loadTorchvisionWeights } from '../src/weights/torchvision.js';
import { LEGACY_NAME, type TorchvisionTensor } from '../src/weights/torchvision-names.js';
import { Pickle, stateDictPickle, torchLegacy, torchZip, zipStored } from './helpers/pth-writer.js';

const PTH = fileURLToPath(new URL('./fixtures/pth/', import.meta.url));
const SMALL = fileURLToPath(new URL('./fixtures/torchvision/small/', import.meta.url));
const SENTINEL = 'pth-sentinel-must-not-exist';

const read = (file: string): Uint8Array => new Uint8Array(readFileSync(file));
const tensorsOf = (file: string): Map<string, TorchvisionTensor> => parseStateDict(read(file), file).tensors;

/** Same names, shapes and bit patterns (NaN payloads and -0 included). */
function expectBitIdentical(actual: Map<string, TorchvisionTensor>, expected: Map<string, TorchvisionTensor>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, want] of expected) {
    const got = actual.get(name)!;
    expect(got.shape, name).toEqual(want.shape);
    const same = Buffer.from(new Uint32Array(got.data).buffer).equals(Buffer.from(new Uint32Array(want.data).buffer));
    expect(same, name).toBe(true);
  }
}

function modernNames(tensors: Map<string, TorchvisionTensor>): Map<string, TorchvisionTensor> {
  return new Map([...tensors].map(([name, t]) => {
    const legacy = LEGACY_NAME.exec(name);
    return [legacy ? `${legacy[1]}${legacy[2]}` : name, t];
  }));
}

function expectError(run: () => unknown, ...parts: (string | RegExp)[]): Error {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected an error').toBeInstanceOf(WeightsFileError);
  const message = (caught as Error).message;
  for (const part of parts) expect(message).toMatch(part);
  return caught as Error;
}

const reference = tensorsOf(join(SMALL, 'weights.safetensors'));

describe('PyTorch checkpoints written by torch.save', () => {
  it.each([
    ['zip.pth', 'zip format'],
    ['float64.pth', 'float64 storages (rounded to float32, exactly the original values)'],
    ['views.pth', 'non-contiguous strides, storage offsets, one storage shared by four tensors'],
    ['views-legacy.pth', 'the same views in the legacy format'],
    ['nested.pth', "a training checkpoint with the weights under 'state_dict'"],
    ['nested-model-legacy.pth', "legacy format, weights under 'model'"],
    ['module.pth', 'a whole saved torchvision DenseNet module'],
    ['module-legacy.pth', 'a whole module in the legacy format'],
  ])('%s (%s) gives the safetensors tensors bit for bit', (file) => {
    expectBitIdentical(tensorsOf(join(PTH, file)), reference);
  });

  it("legacy-names.pth: torchvision's published layout (legacy format, 'norm.1' names) renames to the same tensors", () => {
    const tensors = tensorsOf(join(PTH, 'legacy-names.pth'));
    expect([...tensors.keys()].some((name) => name.includes('.norm.1.'))).toBe(true);
    expectBitIdentical(modernNames(tensors), reference);
  });

  it('float16 and bfloat16 storages give what safetensors F16 / BF16 of the same values give', () => {
    expectBitIdentical(tensorsOf(join(PTH, 'float16.pth')), tensorsOf(join(PTH, 'float16.safetensors')));
    expectBitIdentical(tensorsOf(join(PTH, 'bfloat16-legacy.pth')), tensorsOf(join(PTH, 'bfloat16.safetensors')));
    const raw = parseTorchCheckpoint(read(join(PTH, 'float16.pth')), 'float16.pth');
    expect(raw.get('features.conv0.weight')!.dtype).toBe('float16');
    expect(raw.get('features.norm0.num_batches_tracked')!.dtype).toBe('int64');
  });

  it('loadTorchvisionWeights(model, file.pth) writes the same weights as the safetensors route', async () => {
    await tf.setBackend('cpu');
    const config = JSON.parse(readFileSync(join(SMALL, 'config.json'), 'utf8')) as { architecture: Record<string, number & number[]> };
    const a = config.architecture;
    const build = () => createDenseNet({ growthRate: a['growth_rate'], blockConfig: a['block_config'], numInitFeatures: a['num_init_features'],
      bnSize: a['bn_size'], dropRate: 0, numClasses: a['num_classes'], inputShape: [40, 40, 3], seed: 3 });
    const viaSafetensors = build();
    await loadTorchvisionWeights(viaSafetensors, join(SMALL, 'weights.safetensors'));
    const expected = viaSafetensors.getWeights().map((w) => w.dataSync().slice());
    for (const file of ['legacy-names.pth', 'module.pth', 'views-legacy.pth']) {
      const model = build();
      const report = await loadTorchvisionWeights(model, join(PTH, file));
      expect(report.renamedLegacy > 0, file).toBe(file === 'legacy-names.pth');
      model.getWeights().forEach((w, i) => expect(Buffer.from(w.dataSync().buffer).equals(Buffer.from(expected[i]!.buffer)), `${file} weight ${i}`).toBe(true));
      model.dispose();
    }
    // A name without an extension: the format is told by content.
    const dir = mkdtempSync(join(tmpdir(), 'pth-'));
    try {
      copyFileSync(join(PTH, 'zip.pth'), join(dir, 'weights'));
      const model = build();
      await loadTorchvisionWeights(model, join(dir, 'weights'));
      expect(Buffer.from(model.getWeights()[0]!.dataSync().buffer).equals(Buffer.from(expected[0]!.buffer))).toBe(true);
      model.dispose();
      expect(await checkPretrained(join(dir, 'weights'))).toBe('weights');
      writeFileSync(join(dir, 'notes.pth'), 'just text, not weights');
      await expect(checkPretrained(join(dir, 'notes.pth'))).rejects.toThrow(/must be a torchvision state_dict \(safetensors, or a PyTorch \.pth/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    viaSafetensors.dispose();
  });
});

describe('malicious pickles', () => {
  const places = () => [join(process.cwd(), SENTINEL), join(PTH, SENTINEL), join(tmpdir(), SENTINEL)];
  beforeAll(() => {
    for (const place of places()) expect(existsSync(place), place).toBe(false);
  });
  afterAll(() => {
    for (const place of places()) expect(existsSync(place), `${place} was created: something ran`).toBe(false);
  });

  it.each([
    ['malicious.pth', 'posix.system'],
    ['malicious-legacy.pth', 'posix.system'],
    ['malicious-eval.pth', '__builtin__.eval'],
  ])('%s is refused, naming %s, and nothing runs', async (file, global) => {
    const error = expectError(() => parseStateDict(read(join(PTH, file)), file), `refused the global '${global}'`, 'nothing in the file was run', file);
    expect(error).toBeInstanceOf(UnsafePickleError);
    expect((error as UnsafePickleError).global).toBe(global);
    const model = createDenseNet({ growthRate: 8, blockConfig: [2, 3], numInitFeatures: 16, bnSize: 2, numClasses: 5, inputShape: [40, 40, 3] });
    await expect(loadTorchvisionWeights(model, join(PTH, file))).rejects.toThrow(UnsafePickleError);
    model.dispose();
    for (const place of places()) expect(existsSync(place)).toBe(false);
  });

  it('refuses a whole module of an unknown class, builtins.exec through STACK_GLOBAL, and torch functions', () => {
    const own = new Pickle().global('__main__', 'Net').emptyTuple().newObj().emptyDict().build().bytes();
    expectError(() => parseTorchCheckpoint(torchZip(own, {}), 'own.pth'), "'__main__.Net'", 'save model.state_dict() instead');
    const exec = new Pickle(4).stackGlobal('builtins', 'exec').str('print(1)').raw(0x85).reduce().bytes();
    expect(expectError(() => parseTorchCheckpoint(torchZip(exec, {}), 'exec.pth'), "'builtins.exec'")).toBeInstanceOf(UnsafePickleError);
    const load = new Pickle().global('torch', 'load').str('x.pth').raw(0x85).reduce().bytes();
    expectError(() => parseTorchCheckpoint(torchZip(load, {}), 'load.pth'), "'torch.load'");
    const bytes = new Pickle().global('torch.storage', '_load_from_bytes').bytes();
    expectError(() => parseTorchCheckpoint(torchZip(bytes, {}), 'b.pth'), "'torch.storage._load_from_bytes'");
  });
});

describe('hand-made files: sizes, views and containers', () => {
  const floats = (n: number) => new Uint8Array(new Float32Array(Array.from({ length: n }, (_, i) => i + 0.5)).buffer);

  it('reads zip64 archives and entries with data descriptors', () => {
    const pickle = stateDictPickle([['w', (p) => p.tensor('0', 6, 1, [2, 2], [1, 2])]]);
    for (const options of [{ zip64: true }, { descriptors: true }]) {
      const w = parseTorchCheckpoint(torchZip(pickle, { 0: floats(6) }, options), 'z.pth').get('w')!;
      // A transposed view starting at element 1: [[1.5, 3.5], [2.5, 4.5]].
      expect([...w.data]).toEqual([1.5, 3.5, 2.5, 4.5]);
    }
  });

  it('checks every declared size against the file before allocating', () => {
    const huge = stateDictPickle([['w', (p) => p.tensor('0', 1_000_000_000, 0, [1_000_000_000], [1])]]);
    expectError(() => parseTorchCheckpoint(torchZip(huge, { 0: floats(4) }), 'huge.pth'), "storage '0' declares 1000000000 float32 elements", 'holds 16 bytes');
    const past = stateDictPickle([['w', (p) => p.tensor('0', 4, 2, [3], [1])]]);
    expectError(() => parseTorchCheckpoint(torchZip(past, { 0: floats(4) }), 'past.pth'), 'reaches past its storage');
    // A stride-0 view of one element claiming 10^8 of them: refused by the decoding budget, not allocated.
    const broadcast = stateDictPickle([['w', (p) => p.tensor('0', 1, 0, [100_000_000], [0])]]);
    expectError(() => parseTorchCheckpoint(torchZip(broadcast, { 0: floats(1) }), 'b.pth'), /400000000 bytes, beyond the \d+-byte limit/);
    const legacyMain = stateDictPickle([['w', (p) => p.tensor('0', 4, 0, [4], [1], true)]]);
    expectError(() => parseTorchCheckpoint(torchLegacy(legacyMain, [['0', 1n << 40n, floats(4)]]), 'l.pth'), 'declared with 4 elements but its data record says 1099511627776');
    const legacyHuge = stateDictPickle([['w', (p) => p.tensor('0', 2 ** 40, 0, [4], [1], true)]]);
    expectError(() => parseTorchCheckpoint(torchLegacy(legacyHuge, [['0', 1n << 40n, floats(4)]]), 'l.pth'), 'runs past the end of the file: truncated');
    expect([...parseTorchCheckpoint(torchLegacy(legacyMain, [['0', 4n, floats(4)]]), 'ok.pth').get('w')!.data]).toEqual([0.5, 1.5, 2.5, 3.5]);
  });

  it('names what is wrong with the container', () => {
    const pickle = stateDictPickle([['w', (p) => p.tensor('0', 4, 0, [4], [1])]]);
    expectError(() => parseTorchCheckpoint(torchZip(pickle, { 0: floats(4) }, { method: 8 }), 'c.pth'), 'is compressed (method 8)');
    expectError(() => parseTorchCheckpoint(zipStored([['archive/constants.pkl', pickle], ['archive/code/x.py', floats(1)]]), 's.pt'), 'TorchScript');
    expectError(() => parseTorchCheckpoint(zipStored([['readme.txt', floats(1)]]), 'r.zip'), 'no <name>/data.pkl');
    expectError(() => parseTorchCheckpoint(torchZip(pickle, {}), 'm.pth'), "storage '0' has no entry archive/data/0");
    const bad = torchZip(pickle, { 0: floats(4) });
    bad[bad.length - 40] ^= 0xff; // inside the central directory
    expect(() => parseTorchCheckpoint(bad, 'd.pth')).toThrow(WeightsFileError);
    const zip = read(join(PTH, 'zip.pth'));
    expectError(() => parseStateDict(zip.subarray(0, zip.length - 100), 'cut.pth'), 'cut.pth', /zip archive/);
    const legacy = read(join(PTH, 'legacy-names.pth'));
    expectError(() => parseStateDict(legacy.subarray(0, legacy.length - 100), 'cut.pth'), 'truncated');
    expectError(() => parseStateDict(new TextEncoder().encode('hello, not weights'), 'x.pth'), 'neither safetensors nor a PyTorch checkpoint');
    expectError(() => parseTorchCheckpoint(new Pickle().raw(0xff).bytes(), 'op.pth'), 'neither a zip archive');
    expectError(() => parseTorchCheckpoint(torchZip(new Pickle().raw(0x01).bytes(), {}), 'op.pth'), 'opcode 0x01');
    const notDict = new Pickle().int(3).bytes();
    expectError(() => parseTorchCheckpoint(torchZip(notDict, {}), 'n.pth'), 'holds number, not a state_dict');
  });
});

describe('SHA-256 prefixes in file names', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pth-hash-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the prefix as torchvision's names carry it; dates are not hashes", () => {
    expect(hashPrefixOf('/x/densenet121-a639ec97.pth')).toBe('a639ec97');
    expect(hashPrefixOf('densenet201-c1103571.pth')).toBe('c1103571');
    expect(hashPrefixOf('run-20240101.pth')).toBeNull();
    expect(hashPrefixOf('weights.pth')).toBeNull();
    expect(hashPrefixOf('model-abc.pth')).toBeNull();
  });

  it('checks it on load, names the mismatch, and skips it with checkHash: false', async () => {
    const bytes = readFileSync(join(PTH, 'zip.pth'));
    const prefix = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
    const good = join(dir, `small-${prefix}.pth`);
    writeFileSync(good, bytes);
    const wrong = join(dir, `small-${prefix === 'deadbeef' ? 'beefdead' : 'deadbeef'}.pth`);
    writeFileSync(wrong, bytes);
    const model = () => createDenseNet({ growthRate: 8, blockConfig: [2, 3], numInitFeatures: 16, bnSize: 2, numClasses: 5, inputShape: [40, 40, 3] });
    const m = model();
    await loadTorchvisionWeights(m, good);
    await expect(loadTorchvisionWeights(m, wrong)).rejects.toThrow(/carries the SHA-256 prefix deadbeef but the file's SHA-256 is [0-9a-f]{64}.*checkHash: false/);
    await expect(loadTorchvisionWeights(m, wrong)).rejects.toThrow(UsageError);
    await loadTorchvisionWeights(m, wrong, { checkHash: false });
    m.dispose();
  });
});

describe('trainDenseNet({ pretrained: file.pth })', () => {
  it('starts from the checkpoint (features kept while frozen); a hash mismatch stops the run, checkHash: false lets it go', async () => {
    await initBackend('cpu');
    const dir = mkdtempSync(join(tmpdir(), 'pth-train-'));
    try {
      const data = join(dir, 'shapes');
      await writeSyntheticImageFolder(data, { numClasses: 3, imagesPerClass: 4, valImagesPerClass: 1, imageSize: 40, seed: 3 });
      const file = join(dir, 'small-deadbeef.pth');
      copyFileSync(join(PTH, 'legacy-names.pth'), file);
      const options = { model: { growthRate: 8, blockConfig: [2, 3], numInitFeatures: 16, bnSize: 2 }, data, imageSize: 40, batchSize: 4, epochs: 1, seed: 1,
        pretrained: file, freezeFeatures: true };
      await expect(trainDenseNet(options)).rejects.toThrow(/small-deadbeef\.pth.*SHA-256 prefix deadbeef.*--no-check-hash/);
      const { model } = await trainDenseNet({ ...options, checkHash: false });
      const conv0 = model.getWeights()[0]!.dataSync();
      const fresh = createDenseNet({ growthRate: 8, blockConfig: [2, 3], numInitFeatures: 16, bnSize: 2, numClasses: 5, inputShape: [40, 40, 3] });
      await loadTorchvisionWeights(fresh, join(SMALL, 'weights.safetensors'));
      expect(Buffer.from(conv0.buffer).equals(Buffer.from(fresh.getWeights()[0]!.dataSync().buffer))).toBe(true);
      expect(model.outputs[0]!.shape[1]).toBe(3);
      model.dispose();
      fresh.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("timm's names", () => {
  it("are torchvision's: a 'module.' prefix is dropped (timm's clean_state_dict), a deep stem is named", async () => {
    const model = createDenseNet({ growthRate: 8, blockConfig: [2, 3], numInitFeatures: 16, bnSize: 2, numClasses: 5, inputShape: [40, 40, 3] });
    const wrapped = new Map([...reference].map(([name, t]) => [`module.${name}`, t]));
    const report = await loadTorchvisionWeights(model, wrapped);
    expect(report.renamedLegacy).toBe(reference.size);
    expect(report.loaded).toHaveLength(reference.size);
    const deep = new Map(reference);
    deep.set('features.conv1.weight', { shape: [8, 8, 3, 3], data: new Float32Array(576) });
    await expect(loadTorchvisionWeights(model, deep)).rejects.toThrow(/features\.conv1\.weight.*deep-stem DenseNet such as timm's densenetblur121d/);
    model.dispose();
  });
});
