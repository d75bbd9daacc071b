/**
 * The README's TypeScript examples stay true: every ```ts block type-checks against the sources (imports
 * included, through the package's entry points), and every block that needs nothing from outside (a data
 * folder, a torchvision weights file) runs to completion.
 */
import { execFile } from 'node:child_process';
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
  'PyTorch weights: `loadTorchvisionWeights`, `saveTorchvisionWeights`, `torchvisionNames`': 'needs torchvision\'s densenet121-a639ec97.pth',
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

/**
 * Runs a command without blocking the event loop (a blocked test worker misses vitest's own messages and
 * fails the run with "Timeout calling onTaskUpdate"); resolves with its exit code and output.
 */
function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, env, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

beforeAll(() => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  // `export {}` makes each block a module of its own (top-level await, no clashing names between blocks).
  for (const block of blocks) writeFileSync(block.file, `${block.code}\nexport {};\n`);
  writeFileSync(path.join(DIR, 'tsconfig.json'), JSON.stringify({ extends: '../../tsconfig.json', include: ['*.ts'], exclude: [], compilerOptions: { noUnusedLocals: false } }));
});

afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe('README examples', () => {
  it('has TypeScript examples, and every heading that is not run still exists', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const heading of Object.keys(NOT_RUN)) expect(blocks.map((b) => b.heading)).toContain(heading);
  });

  it('every ```ts block type-checks against the package entry points', async () => {
    const tsc = await run([path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(DIR, 'tsconfig.json'), '--noEmit']);
    expect(tsc.output).toBe('');
    expect(tsc.code).toBe(0);
  });

  it.each(blocks.filter((b) => !(b.heading in NOT_RUN)).map((b) => [b.heading, b] as const))('runs: %s', async (_, block) => {
    const result = await run(['--import', 'tsx', block.file], { ...process.env, EFFICIENT_DENSENET_BACKEND: 'wasm' });
    expect(result.code, `${block.heading}\n${result.output}`).toBe(0);
  });
});
