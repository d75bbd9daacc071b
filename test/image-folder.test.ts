import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/util/errors.js';
import { scanImageFolder } from '../src/data/image-folder.js';
import { createRng, shuffleInPlace } from '../src/util/rng.js';

let tmp: string;
let counter = 0;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'image-folder-test-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Builds a folder from relative file paths (scanning never decodes, so the bytes do not matter). */
async function makeTree(files: string[]): Promise<string> {
  const root = path.join(tmp, `tree-${counter++}`);
  await fs.mkdir(root, { recursive: true });
  for (const f of files) {
    await fs.mkdir(path.dirname(path.join(root, f)), { recursive: true });
    await fs.writeFile(path.join(root, f), 'x');
  }
  return root;
}

function range(n: number, make: (i: number) => string): string[] {
  return Array.from({ length: n }, (_, i) => make(i));
}

async function expectUsageError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  expect((error as Error).message).toMatch(message);
}

describe('scanImageFolder, train/ + val/ layout', () => {
  it('reads sorted classes, labels by folder, and counts non-image files', async () => {
    const root = await makeTree([
      'train/zebra/a.jpg',
      'train/zebra/b.JPEG',
      'train/Apple/c.png',
      'train/Apple/nested/d.WebP',
      'train/Apple/notes.txt',
      'train/apple/e.jpg',
      'train/apple/.DS_Store',
      'train/README.md',
      'val/zebra/f.jpg',
      'val/Apple/g.png',
      'val/apple/h.jpeg',
      'val/apple/i.gif',
      'LICENSE',
    ]);
    const folder = await scanImageFolder(root, { numClasses: 3 });
    // Code-point order: upper case before lower case, as Python's sorted() and torchvision do.
    expect(folder.classNames).toEqual(['Apple', 'apple', 'zebra']);
    const rel = (s: { path: string; label: number }): [string, number] => [path.relative(root, s.path), s.label];
    expect(folder.train.map(rel)).toEqual([
      ['train/Apple/c.png', 0],
      ['train/Apple/nested/d.WebP', 0],
      ['train/apple/e.jpg', 1],
      ['train/zebra/a.jpg', 2],
      ['train/zebra/b.JPEG', 2],
    ]);
    expect(folder.val.map(rel)).toEqual([
      ['val/Apple/g.png', 0],
      ['val/apple/h.jpeg', 1],
      ['val/zebra/f.jpg', 2],
    ]);
    // notes.txt, .DS_Store, train/README.md, i.gif (LICENSE is beside train/ and val/, not scanned).
    expect(folder.ignoredFiles).toBe(4);
  });

  it('rejects train and val with different classes, naming them', async () => {
    const root = await makeTree(['train/cat/a.jpg', 'train/dog/b.jpg', 'val/cat/c.jpg', 'val/cow/d.jpg']);
    await expectUsageError(scanImageFolder(root), /same class folders.*only in .*train: dog.*only in .*val: cow/);
  });

  it('rejects train/ without val/', async () => {
    const root = await makeTree(['train/cat/a.jpg']);
    await expectUsageError(scanImageFolder(root), /has train\/ but no val\/ folder/);
  });

  it('rejects a val class folder without images', async () => {
    const root = await makeTree(['train/cat/a.jpg', 'val/cat/readme.txt']);
    await expectUsageError(scanImageFolder(root), /class folder .*val[/\\]cat holds no images .*1 other file/);
  });
});

describe('scanImageFolder, ROOT/<class> layout', () => {
  it('splits each class by valSplit, deterministically by seed', async () => {
    const root = await makeTree([...range(20, (i) => `a/${i}.png`), ...range(10, (i) => `b/${i}.jpg`)]);
    const first = await scanImageFolder(root, { valSplit: 0.3, seed: 5 });
    expect(first.classNames).toEqual(['a', 'b']);
    const count = (samples: { label: number }[], label: number): number => samples.filter((s) => s.label === label).length;
    expect([count(first.train, 0), count(first.val, 0)]).toEqual([14, 6]);
    expect([count(first.train, 1), count(first.val, 1)]).toEqual([7, 3]);
    const all = [...first.train, ...first.val].map((s) => s.path).sort();
    expect(new Set(all).size).toBe(30);
    for (const s of [...first.train, ...first.val]) {
      expect(path.basename(path.dirname(s.path))).toBe(first.classNames[s.label]);
    }

    const again = await scanImageFolder(root, { valSplit: 0.3, seed: 5 });
    expect(again).toEqual(first);
    const other = await scanImageFolder(root, { valSplit: 0.3, seed: 6 });
    expect(other.val.map((s) => s.path)).not.toEqual(first.val.map((s) => s.path));
  });

  it('defaults to a 0.2 split and counts stray files at the root', async () => {
    const root = await makeTree([...range(10, (i) => `x/${i}.png`), ...range(5, (i) => `y/${i}.png`), 'labels.csv']);
    const folder = await scanImageFolder(root);
    expect(folder.val).toHaveLength(3);
    expect(folder.train).toHaveLength(12);
    expect(folder.ignoredFiles).toBe(1);
  });

  it('rejects valSplit outside (0, 1)', async () => {
    const root = await makeTree(range(4, (i) => `a/${i}.png`));
    for (const valSplit of [0, 1, -0.1, 1.5, Number.NaN]) {
      await expectUsageError(scanImageFolder(root, { valSplit }), /valSplit must lie strictly between 0 and 1/);
    }
  });

  it('rejects a valSplit that leaves a class without validation or training images', async () => {
    const root = await makeTree([...range(10, (i) => `big/${i}.png`), ...range(2, (i) => `small/${i}.png`)]);
    await expectUsageError(
      scanImageFolder(root, { valSplit: 0.2 }),
      /valSplit 0.2 leaves class 'small' \(2 images in .*small\) with no validation images/,
    );
    await expectUsageError(scanImageFolder(root, { valSplit: 0.9 }), /leaves class 'small' .* with no training images/);
  });
});

describe('scanImageFolder errors', () => {
  it('names a missing folder, or a file given as the folder', async () => {
    const missing = path.join(tmp, 'does-not-exist');
    await expectUsageError(scanImageFolder(missing), /image folder .*does-not-exist does not exist/);
    const file = path.join(tmp, 'plain-file.png');
    await fs.writeFile(file, 'x');
    await expectUsageError(scanImageFolder(file), /plain-file.png is not a folder/);
  });

  it('rejects a folder without class subfolders', async () => {
    const root = await makeTree(['a.jpg', 'b.png']);
    await expectUsageError(scanImageFolder(root), /has no class subfolders/);
  });

  it('rejects a class folder without images', async () => {
    const root = await makeTree(['cat/a.jpg', 'cat/b.jpg', 'dog/x.bmp']);
    await fs.mkdir(path.join(root, 'emu'));
    await expectUsageError(scanImageFolder(root, { valSplit: 0.5 }), /class folder .*dog holds no images \(.jpg .jpeg .png .webp\)/);
  });

  it('rejects numClasses different from the number of class folders', async () => {
    const root = await makeTree(['a/1.jpg', 'a/2.jpg', 'b/1.jpg', 'b/2.jpg']);
    await expectUsageError(scanImageFolder(root, { numClasses: 3, valSplit: 0.5 }), /numClasses is 3 but image folder .* has 2 class folders/);
    await expectUsageError(scanImageFolder(root, { numClasses: 0 }), /numClasses must be a positive integer/);
    const ok = await scanImageFolder(root, { numClasses: 2, valSplit: 0.5 });
    expect(ok.train).toHaveLength(2);
  });
});

describe('seeded helpers', () => {
  it('createRng repeats per seed and shuffles to a permutation', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const seqA = Array.from({ length: 8 }, () => a.next());
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(seqA);
    for (const v of seqA) expect(v >= 0 && v < 1).toBe(true);
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = shuffleInPlace([...items], createRng(1));
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items);
  });
});
