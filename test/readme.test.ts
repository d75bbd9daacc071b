/**
 * The README's TypeScript examples stay true: every ```ts block type-checks against the sources (imports
 * included, through the package's entry points), and every block that needs nothing from outside (a data
 * folder, a torchvision weights file) runs to completion.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Inside test/ so that tsconfig's paths (the package's entry points) apply; ignored by git. */
const DIR = path.join(ROOT, 'test', 'readme-blocks');

/** Blocks that need files a reader brings (their heading → why they are only type-checked). */
const NOT_RUN: Record<string, string> = {
  'Training: `trainDenseNet`': 'needs an image folder ./flowers',
  'PyTorch weights: `loadTorchvisionWeights`, `saveTorchvisionWeights`, `torchvisionNames`': 'needs a torchvision densenet121.safetensors',
};

interface Block {
  heading: string;
  file: string;
  code: string;
}

function readmeBlocks(): Block[] {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks: Block[] = [];
  let heading = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const title = /^#{2,4} (.*)$/.exec(line);
    if (title) heading = title[1]!;
    if (line.trim() === '```ts') {
      const end = lines.indexOf('```', i + 1);
      blocks.push({ heading, file: path.join(DIR, `block-${blocks.length + 1}.ts`), code: lines.slice(i + 1, end).join('\n') });
      i = end;
    }
  }
  return blocks;
}

const blocks = readmeBlocks();

beforeAll(() => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  // `export {}` makes each block a module of its own (top-level await, no clashing names between blocks).
  for (const block of blocks) writeFileSync(block.file, `${block.code}\nexport {};\n`);
  writeFileSync(path.join(DIR, 'tsconfig.json'), JSON.stringify({ extends: '../../tsconfig.json', include: ['*.ts'], compilerOptions: { noUnusedLocals: false } }));
});

afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe('README examples', () => {
  it('has TypeScript examples, and every heading that is not run still exists', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const heading of Object.keys(NOT_RUN)) expect(blocks.map((b) => b.heading)).toContain(heading);
  });

  it('every ```ts block type-checks against the package entry points', () => {
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(DIR, 'tsconfig.json'), '--noEmit'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });

  it.each(blocks.filter((b) => !(b.heading in NOT_RUN)).map((b) => [b.heading, b] as const))('runs: %s', (_, block) => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', block.file], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, EFFICIENT_DENSENET_BACKEND: 'wasm' },
    });
    expect(run.status, `${block.heading}\n${run.stderr}`).toBe(0);
  });
});
