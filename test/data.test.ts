import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/util/logger.js';
import { UsageError } from '../src/util/errors.js';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  type ImageFolderDataset,
  imageFolderDataset,
  randomResizedCropBox,
} from '../src/data/dataset.js';
import { type Sample, scanImageFolder } from '../src/data/image-folder.js';
import { createRng } from '../src/util/rng.js';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';

let tmp: string;
let synthetic: { train: Sample[]; val: Sample[]; classNames: string[] };

beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'data-test-'));
  const root = path.join(tmp, 'synthetic');
  await writeSyntheticImageFolder(root, { imagesPerClass: 6, valImagesPerClass: 2, imageSize: 40, seed: 11 });
  synthetic = await scanImageFolder(root);
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

interface CollectedBatch {
  shape: number[];
  dtype: string;
  xs: Float32Array;
  ys: number[][];
}

/** Reads one pass and disposes every tensor, so tests also check that nothing leaks. */
async function collect(dataset: ImageFolderDataset): Promise<CollectedBatch[]> {
  const out: CollectedBatch[] = [];
  await dataset.forEachAsync((batch) => {
    out.push({
      shape: batch.xs.shape,
      dtype: batch.xs.dtype,
      xs: batch.xs.dataSync() as Float32Array,
      ys: batch.ys.arraySync(),
    });
    tf.dispose(batch);
  });
  return out;
}

function normalised(value: number, channel: number): number {
  return (value / 255 - IMAGENET_MEAN[channel]!) / IMAGENET_STD[channel]!;
}

/** An image whose left `split` columns are `left` and the rest `right`. */
async function writeHalves(
  file: string,
  size: number,
  split: number,
  left: [number, number, number],
  right: [number, number, number],
): Promise<void> {
  const raw = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) raw.set(x < split ? left : right, (y * size + x) * 3);
  }
  await sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => {}, warn: (m) => warnings.push(m) };
}

describe('imageFolderDataset', () => {
  it('yields NHWC float32 batches with one-hot labels, the last one smaller, and leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const samples = synthetic.train.slice(0, 10);
    const batches = await collect(
      imageFolderDataset(samples, { imageSize: 24, batchSize: 4, numClasses: 4, augment: 'none' }),
    );
    expect(batches.map((b) => b.shape)).toEqual([
      [4, 24, 24, 3],
      [4, 24, 24, 3],
      [2, 24, 24, 3],
    ]);
    for (const b of batches) expect(b.dtype).toBe('float32');
    // No shuffle: samples come in the given order, so labels are known.
    const labels = batches.flatMap((b) => b.ys);
    expect(labels).toEqual(samples.map((s) => [0, 1, 2, 3].map((k) => (k === s.label ? 1 : 0))));
    expect(tf.memory().numTensors).toBe(before);

    const dropped = await collect(
      imageFolderDataset(samples, { imageSize: 8, batchSize: 4, numClasses: 4, dropRemainder: true }),
    );
    expect(dropped.map((b) => b.shape[0])).toEqual([4, 4]);
  });

  it('normalises with ImageNet mean/std on [0, 1] pixels, RGB order, for PNG, grey, RGBA, WebP and JPEG', async () => {
    const dir = path.join(tmp, 'formats');
    await fs.mkdir(dir, { recursive: true });
    const colour = { r: 200, g: 100, b: 50 };
    const solid = (channels: 3 | 4) =>
      sharp({ create: { width: 10, height: 10, channels, background: { ...colour, alpha: channels === 4 ? 0.5 : 1 } } });
    await solid(3).png().toFile(path.join(dir, 'rgb.png'));
    await solid(4).png().toFile(path.join(dir, 'rgba.png'));
    await solid(3).webp({ lossless: true }).toFile(path.join(dir, 'lossless.webp'));
    await solid(3).jpeg({ quality: 100 }).toFile(path.join(dir, 'photo.jpg'));
    await sharp(Buffer.alloc(100, 90), { raw: { width: 10, height: 10, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(path.join(dir, 'grey.png'));
    expect((await sharp(path.join(dir, 'grey.png')).metadata()).channels).toBe(1);

    const names = ['rgb.png', 'rgba.png', 'lossless.webp', 'photo.jpg', 'grey.png'];
    const samples = names.map((n) => ({ path: path.join(dir, n), label: 0 }));
    const [batch] = await collect(imageFolderDataset(samples, { imageSize: 6, batchSize: 5, numClasses: 1 }));
    const xs = batch!.xs;
    const perImage = 6 * 6 * 3;
    const expected = (rgb: number[]) => rgb.map((v, c) => normalised(v, c));
    for (let i = 0; i < 4; i++) {
      const tolerance = names[i] === 'photo.jpg' ? 0.05 : 1e-5;
      for (let p = 0; p < 36; p++) {
        const got = Array.from(xs.subarray(i * perImage + p * 3, i * perImage + p * 3 + 3));
        expected([200, 100, 50]).forEach((e, c) => expect(Math.abs(got[c]! - e), names[i]).toBeLessThan(tolerance));
      }
    }
    const grey = Array.from(xs.subarray(4 * perImage, 4 * perImage + 3));
    expected([90, 90, 90]).forEach((e, c) => expect(grey[c]).toBeCloseTo(e, 5));
    // A known value, written out: (200/255 - 0.485) / 0.229.
    expect(xs[0]).toBeCloseTo(1.30705, 4);
  });

  it('flips and pads as torchvision does, and "none" leaves pixels in place', async () => {
    const file = path.join(tmp, 'halves.png');
    // Same size as the network input, so resizing does not blend the two halves.
    await writeHalves(file, 16, 4, [255, 0, 0], [0, 0, 255]);
    const samples = Array.from({ length: 16 }, () => ({ path: file, label: 0 }));
    const red = [normalised(255, 0), normalised(0, 1), normalised(0, 2)];
    const blue = [normalised(0, 0), normalised(0, 1), normalised(255, 2)];
    const black = [normalised(0, 0), normalised(0, 1), normalised(0, 2)];
    const classify = (xs: Float32Array, at: number): string => {
      const px = Array.from(xs.subarray(at, at + 3));
      for (const [name, ref] of [['r', red], ['b', blue], ['k', black]] as const) {
        if (px.every((v, c) => Math.abs(v - ref[c]!) < 1e-5)) return name;
      }
      return '?';
    };
    const rows = async (augment: 'none' | 'flip' | 'crop'): Promise<string[][]> => {
      const [batch] = await collect(
        imageFolderDataset(samples, { imageSize: 16, batchSize: 16, numClasses: 1, augment, seed: 3 }),
      );
      // Each image as 16 row strings.
      return Array.from({ length: 16 }, (_, i) =>
        Array.from({ length: 16 }, (_, y) =>
          Array.from({ length: 16 }, (_, x) => classify(batch!.xs, ((i * 16 + y) * 16 + x) * 3)).join(''),
        ),
      );
    };
    const plain = 'rrrr' + 'b'.repeat(12);
    const mirrored = 'b'.repeat(12) + 'rrrr';
    for (const image of await rows('none')) expect(new Set(image)).toEqual(new Set([plain]));
    const flips = await rows('flip');
    for (const image of flips) expect([plain, mirrored]).toContain(image[0]);
    const flipped = flips.filter((image) => image[0] === mirrored).length;
    expect(flipped).toBeGreaterThan(0);
    expect(flipped).toBeLessThan(16);

    // Crop: each image is the padded original shifted by (dx, dy) in [-4, 4], black where it reads padding,
    // possibly mirrored afterwards.
    let shifted = 0;
    for (const image of await rows('crop')) {
      let matched = false;
      for (let dy = -4; dy <= 4 && !matched; dy++) {
        for (let dx = -4; dx <= 4 && !matched; dx++) {
          for (const flip of [false, true]) {
            const expectedRows = Array.from({ length: 16 }, (_, y) =>
              Array.from({ length: 16 }, (_, x) => {
                const sx = (flip ? 15 - x : x) + dx;
                const sy = y + dy;
                if (sx < 0 || sx > 15 || sy < 0 || sy > 15) return 'k';
                return sx < 4 ? 'r' : 'b';
              }).join(''),
            );
            if (expectedRows.every((r, y) => r === image[y])) {
              matched = true;
              if (dx !== 0 || dy !== 0) shifted++;
              break;
            }
          }
        }
      }
      expect(matched).toBe(true);
    }
    expect(shifted).toBeGreaterThan(8);
  });

  it('decodes the next batch while the consumer holds the current one, and no further', async () => {
    const dataset = imageFolderDataset(synthetic.train, { imageSize: 16, batchSize: 4, numClasses: 4 });
    const iterator = await dataset.iterator();
    // The consumer "trains" for a while without asking for more; decoding must still move on.
    const settle = async (target: number): Promise<void> => {
      for (let waited = 0; dataset.stats.decoded < target && waited < 5000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    };
    tf.dispose((await iterator.next()).value);
    await settle(8);
    expect(dataset.stats.decoded).toBe(8);
    tf.dispose((await iterator.next()).value);
    await settle(12);
    expect(dataset.stats.decoded).toBe(12);
  });

  it('gives identical batches for the same seed and different ones for another seed', async () => {
    const options = {
      imageSize: 20,
      batchSize: 8,
      numClasses: 4,
      augment: 'resized-crop' as const,
      shuffle: true,
      prefetch: 5,
    };
    const a = await collect(imageFolderDataset(synthetic.train, { ...options, seed: 1 }));
    const b = await collect(imageFolderDataset(synthetic.train, { ...options, seed: 1 }));
    const c = await collect(imageFolderDataset(synthetic.train, { ...options, seed: 2 }));
    expect(a.map((x) => x.shape)).toEqual([
      [8, 20, 20, 3],
      [8, 20, 20, 3],
      [8, 20, 20, 3],
    ]);
    expect(b.map((x) => x.ys)).toEqual(a.map((x) => x.ys));
    a.forEach((batch, i) => expect(Buffer.compare(Buffer.from(batch.xs.buffer), Buffer.from(b[i]!.xs.buffer))).toBe(0));
    expect(c.map((x) => x.ys)).not.toEqual(a.map((x) => x.ys));
    expect(Buffer.compare(Buffer.from(a[0]!.xs.buffer), Buffer.from(c[0]!.xs.buffer))).not.toBe(0);
    // Shuffling keeps every sample exactly once per pass.
    const labelCounts = (batches: CollectedBatch[]): number[] =>
      [0, 1, 2, 3].map((k) => batches.flatMap((x) => x.ys).filter((row) => row[k] === 1).length);
    expect(labelCounts(a)).toEqual([6, 6, 6, 6]);

    // Each pass reshuffles and redraws, and the n-th pass repeats for the same seed.
    const dsA = imageFolderDataset(synthetic.train, { ...options, seed: 1 });
    const dsB = imageFolderDataset(synthetic.train, { ...options, seed: 1 });
    const firstA = await collect(dsA);
    const secondA = await collect(dsA);
    await collect(dsB);
    const secondB = await collect(dsB);
    expect(secondA.map((x) => x.ys)).not.toEqual(firstA.map((x) => x.ys));
    expect(secondB.map((x) => x.ys)).toEqual(secondA.map((x) => x.ys));
    expect(Buffer.compare(Buffer.from(secondA[1]!.xs.buffer), Buffer.from(secondB[1]!.xs.buffer))).toBe(0);
  });

  it('skips a corrupt file with one warning naming it, and records it in stats', async () => {
    const corrupt = path.join(tmp, 'corrupt.jpg');
    await fs.writeFile(corrupt, Buffer.from('this is not a jpeg at all, just bytes'));
    const truncated = path.join(tmp, 'truncated.png');
    const png = await fs.readFile(synthetic.val[0]!.path);
    await fs.writeFile(truncated, png.subarray(0, Math.floor(png.length / 2)));
    const good = synthetic.val.slice(0, 5);
    const samples = [good[0]!, { path: corrupt, label: 1 }, ...good.slice(1, 3), { path: truncated, label: 2 }, ...good.slice(3)];
    const logger = recordingLogger();
    const dataset = imageFolderDataset(samples, { imageSize: 16, batchSize: 3, numClasses: 4, logger });
    const batches = await collect(dataset);
    expect(batches.map((b) => b.shape[0])).toEqual([3, 2]);
    expect(batches.flatMap((b) => b.ys).map((row) => row.indexOf(1))).toEqual(good.map((s) => s.label));
    expect(dataset.stats.skipped).toEqual([corrupt, truncated]);
    expect(dataset.stats.decoded).toBe(5);
    expect(logger.warnings).toHaveLength(2);
    expect(logger.warnings[0]).toContain(corrupt);
    expect(logger.warnings[1]).toContain(truncated);

    await collect(dataset);
    expect(logger.warnings).toHaveLength(2);
    expect(dataset.stats.skipped).toEqual([corrupt, truncated]);
  });

  it('fails a pass in which no image decodes', async () => {
    const corrupt = path.join(tmp, 'only-corrupt.png');
    await fs.writeFile(corrupt, Buffer.from([1, 2, 3, 4]));
    const dataset = imageFolderDataset([{ path: corrupt, label: 0 }], { imageSize: 8, batchSize: 2, numClasses: 2 });
    await expect(collect(dataset)).rejects.toThrow(/none of the 1 images could be decoded/);
    expect(dataset.stats.skipped).toEqual([corrupt]);
  });

  it('rejects bad options with a UsageError naming the argument', () => {
    const samples = [{ path: 'x.png', label: 0 }];
    const base = { imageSize: 8, batchSize: 2, numClasses: 2 };
    const cases: [() => unknown, RegExp][] = [
      [() => imageFolderDataset(samples, { ...base, batchSize: 0 }), /batchSize must be a positive integer/],
      [() => imageFolderDataset(samples, { ...base, imageSize: 2.5 }), /imageSize must be a positive integer/],
      [() => imageFolderDataset([], base), /no samples/],
      [() => imageFolderDataset([{ path: 'y.png', label: 2 }], base), /sample y.png has label 2; labels must be integers in \[0, 2\)/],
      [() => imageFolderDataset(samples, { ...base, augment: 'mixup' as 'none' }), /augment must be one of none, flip, crop, resized-crop/],
      [() => imageFolderDataset(samples, { ...base, resizedCropScale: [0.5, 0.2] }), /resizedCropScale/],
      [() => imageFolderDataset(samples, { ...base, prefetch: 0 }), /prefetch must be a positive integer/],
      [() => imageFolderDataset(samples, { ...base, cropPadding: -1 }), /cropPadding/],
      [() => imageFolderDataset(samples, { ...base, dropRemainder: true }), /dropRemainder with batchSize 2 would drop all 1 samples/],
    ];
    for (const [make, message] of cases) {
      expect(make).toThrow(UsageError);
      expect(make).toThrow(message);
    }
  });
});

describe('randomResizedCropBox', () => {
  it('stays inside the image with area and aspect ratio in range', () => {
    const rng = createRng(9);
    for (let i = 0; i < 500; i++) {
      const box = randomResizedCropBox(300, 200, [0.08, 1], [3 / 4, 4 / 3], rng);
      expect(box.left).toBeGreaterThanOrEqual(0);
      expect(box.top).toBeGreaterThanOrEqual(0);
      expect(box.left + box.width).toBeLessThanOrEqual(300);
      expect(box.top + box.height).toBeLessThanOrEqual(200);
      const area = (box.width * box.height) / (300 * 200);
      // Rounding width and height to whole pixels moves area and ratio a little.
      expect(area).toBeGreaterThan(0.07);
      expect(area).toBeLessThanOrEqual(1);
      if (box.width < 300 && box.height < 200) {
        expect(box.width / box.height).toBeGreaterThan(0.7);
        expect(box.width / box.height).toBeLessThan(1.4);
      }
    }
  });

  it('falls back to a centre crop of the clamped ratio', () => {
    expect(randomResizedCropBox(100, 1, [0.08, 1], [3 / 4, 4 / 3], createRng(0))).toEqual({
      left: 49,
      top: 0,
      width: 1,
      height: 1,
    });
    expect(randomResizedCropBox(10, 40, [1, 1], [3 / 4, 4 / 3], createRng(0))).toEqual({
      left: 0,
      top: 13,
      width: 10,
      height: 13,
    });
  });
});
