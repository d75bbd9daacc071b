import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/util/errors.js';
import { scanImageFolder } from '../src/data/image-folder.js';
import { drawImage, writeSyntheticImageFolder } from '../src/data/synthetic.js';
import { createRng } from '../src/util/rng.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'synthetic-test-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('writeSyntheticImageFolder', () => {
  it('writes ROOT/train/<class> and ROOT/val/<class> PNGs of the requested size, quickly', async () => {
    const root = path.join(tmp, 'layout');
    const start = Date.now();
    const info = await writeSyntheticImageFolder(root, { imagesPerClass: 60, valImagesPerClass: 15, seed: 1 });
    const elapsed = Date.now() - start;
    expect(info).toEqual({
      classNames: ['circle', 'cross', 'square', 'triangle'],
      trainPerClass: 60,
      valPerClass: 15,
      files: 300,
    });
    // A few hundred 64×64 images should take well under 2 s; generous here for a shared machine.
    expect(elapsed).toBeLessThan(6000);
    const folder = await scanImageFolder(root);
    expect(folder.classNames).toEqual(info.classNames);
    expect(folder.train).toHaveLength(240);
    expect(folder.val).toHaveLength(60);
    expect(folder.ignoredFiles).toBe(0);
    const meta = await sharp(folder.train[0]!.path).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBe(64);
    expect(meta.height).toBe(64);
    expect(meta.channels).toBe(3);
  });

  it('is byte-identical for the same seed and differs for another seed', async () => {
    const a = path.join(tmp, 'det-a');
    const b = path.join(tmp, 'det-b');
    const c = path.join(tmp, 'det-c');
    const opts = { imagesPerClass: 5, imageSize: 32, variant: 'textures' as const };
    await writeSyntheticImageFolder(a, { ...opts, seed: 7 });
    await writeSyntheticImageFolder(b, { ...opts, seed: 7 });
    await writeSyntheticImageFolder(c, { ...opts, seed: 8 });
    const files = await listFiles(a);
    expect(files.length).toBe(4 * (5 + 1));
    expect(await listFiles(b)).toEqual(files);
    let differing = 0;
    for (const f of files) {
      const bytesA = await fs.readFile(path.join(a, f));
      expect(Buffer.compare(bytesA, await fs.readFile(path.join(b, f)))).toBe(0);
      if (Buffer.compare(bytesA, await fs.readFile(path.join(c, f))) !== 0) differing++;
    }
    expect(differing).toBe(files.length);
  });

  it('offers a second task (textures) with other classes, and a flat layout', async () => {
    const root = path.join(tmp, 'flat');
    const info = await writeSyntheticImageFolder(root, {
      imagesPerClass: 4,
      numClasses: 6,
      imageSize: 16,
      split: false,
      variant: 'textures',
    });
    expect(info.classNames).toEqual(['antidiagonal', 'checker', 'diagonal', 'dots', 'hstripes', 'vstripes']);
    expect(info.valPerClass).toBe(0);
    expect((await fs.readdir(root)).sort()).toEqual(info.classNames);
    const folder = await scanImageFolder(root, { valSplit: 0.25 });
    expect(folder.train).toHaveLength(18);
    expect(folder.val).toHaveLength(6);
  });

  it('cannot be solved from the mean colour alone', async () => {
    const root = path.join(tmp, 'mean-colour');
    await writeSyntheticImageFolder(root, { imagesPerClass: 32, valImagesPerClass: 32, imageSize: 32, seed: 3 });
    const folder = await scanImageFolder(root);
    const meanColour = async (file: string): Promise<number[]> => (await sharp(file).stats()).channels.map((c) => c.mean);
    const centroids = folder.classNames.map(() => [0, 0, 0]);
    const counts = folder.classNames.map(() => 0);
    for (const s of folder.train) {
      const m = await meanColour(s.path);
      m.forEach((v, c) => (centroids[s.label]![c]! += v));
      counts[s.label]!++;
    }
    centroids.forEach((cen, k) => cen.forEach((_, c) => (cen[c]! /= counts[k]!)));
    let correct = 0;
    for (const s of folder.val) {
      const m = await meanColour(s.path);
      const dist = centroids.map((cen) => Math.hypot(...cen.map((v, c) => v - m[c]!)));
      if (dist.indexOf(Math.min(...dist)) === s.label) correct++;
    }
    // Chance is 25 %; a nearest-mean-colour classifier must stay close to it.
    expect(correct / folder.val.length).toBeLessThan(0.45);
  }, 20_000);

  it('draws a brightness contrast, which a JPEG copy keeps, not a colour one', async () => {
    // A random colour pair per image let a DenseNet learn 100 images per class by their colours, and an
    // iso-luminant pair's stripes are what JPEG's half-resolution chroma blurs away (see contrastingLevels).
    const size = 32;
    const pixelRange = (pixels: Uint8Array): number => {
      // Vertical stripes: the brightness of each column, averaged over its rows and the three channels.
      const columns = new Array<number>(size).fill(0);
      for (let i = 0; i < pixels.length; i++) columns[Math.floor(i / 3) % size]! += pixels[i]! / (3 * size);
      return Math.max(...columns) - Math.min(...columns);
    };
    for (let seed = 0; seed < 20; seed++) {
      const pixels = drawImage('textures', 'vstripes', size, createRng(seed));
      const channelMeans = [0, 1, 2].map((c) => pixels.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (size * size));
      expect(Math.max(...channelMeans) - Math.min(...channelMeans), `seed ${seed}: channel means ${channelMeans}`).toBeLessThan(6);
      expect(pixelRange(pixels), `seed ${seed}`).toBeGreaterThan(60);
      const jpeg = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 75 }).toBuffer();
      expect(pixelRange(new Uint8Array(await sharp(jpeg).raw().toBuffer())), `seed ${seed}, JPEG`).toBeGreaterThan(60);
    }
  });

  it('refuses a non-empty folder unless overwrite is set', async () => {
    const root = path.join(tmp, 'busy');
    await fs.mkdir(root, { recursive: true });
    await fs.writeFile(path.join(root, 'keep.txt'), 'x');
    await expect(writeSyntheticImageFolder(root, { imagesPerClass: 2, imageSize: 16 })).rejects.toThrow(
      /busy is not empty; pass overwrite: true/,
    );
    await writeSyntheticImageFolder(root, { imagesPerClass: 2, imageSize: 16, overwrite: true });
    expect((await fs.readdir(root)).sort()).toEqual(['train', 'val']);
  });

  it('rejects bad options with a UsageError naming them', async () => {
    const root = path.join(tmp, 'never');
    const cases: [Parameters<typeof writeSyntheticImageFolder>[1], RegExp][] = [
      [{ imagesPerClass: 0 }, /imagesPerClass must be a positive integer/],
      [{ imagesPerClass: 2, numClasses: 7 }, /numClasses must be an integer from 2 to 6/],
      [{ imagesPerClass: 2, numClasses: 1 }, /numClasses/],
      [{ imagesPerClass: 2, imageSize: 8 }, /imageSize must be an integer from 16/],
      [{ imagesPerClass: 2, valImagesPerClass: 0 }, /valImagesPerClass/],
      [{ imagesPerClass: 2, variant: 'noise' as 'shapes' }, /variant must be 'shapes' or 'textures'/],
    ];
    for (const [opts, message] of cases) {
      const error = await writeSyntheticImageFolder(root, opts).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
    }
    await expect(fs.stat(root)).rejects.toThrow(/ENOENT/);
  });
});
