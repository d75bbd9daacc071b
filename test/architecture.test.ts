/**
 * The house rules that keep the code base readable: top-level folders of src/ import only downwards, no file
 * is over 400 lines, a backend's name decides things only in backend/ (its traits table) and a memory mode's
 * name only in the mode table, and the main entry loads no image decoder (sharp) or charting library (vega),
 * so a user who only wants a model needs neither.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = path.join(ROOT, 'src');

/**
 * Every top-level folder of src/, lowest first: a module may import from its own folder and from folders
 * listed before it, never after (README, "Architecture"). `index` is the main entry, src/index.ts.
 */
const LAYERS = ['util', 'io', 'backend', 'ops', 'norm', 'recompute', 'layers', 'step', 'memory', 'parallel', 'charts', 'weights', 'data', 'train', 'bench', 'cli', 'index'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? sourceFiles(full) : name.endsWith('.ts') ? [full] : [];
  });
}

function folderOf(file: string): string {
  const [first] = path.relative(SRC, file).split(path.sep);
  return first!.endsWith('.ts') ? first!.slice(0, -3) : first!;
}

/** Relative imports (static, re-exports and dynamic) of a source file, as folder names. */
function importedFolders(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => folderOf(path.resolve(path.dirname(file), s)));
}

function edges(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    for (const to of importedFolders(file)) {
      if (to === from) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from)!.add(to);
    }
  }
  return graph;
}

describe('architecture', () => {
  it('every top-level folder of src/ has its place in the layering', () => {
    const folders = new Set(sourceFiles(SRC).map(folderOf));
    expect([...folders].filter((f) => !LAYERS.includes(f))).toEqual([]);
  });

  it('imports point one way: each folder imports only folders below it', () => {
    const upward: string[] = [];
    for (const [from, tos] of edges()) {
      for (const to of tos) if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) upward.push(`${from} → ${to}`);
    }
    expect(upward).toEqual([]);
  });

  it('no import cycle between folders; train and bench never import each other in both directions', () => {
    const graph = edges();
    const cycles: string[] = [];
    const visit = (node: string, trail: string[]): void => {
      if (trail.includes(node)) {
        cycles.push([...trail.slice(trail.indexOf(node)), node].join(' → '));
        return;
      }
      for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
    };
    for (const node of graph.keys()) visit(node, []);
    expect(cycles).toEqual([]);
    expect(graph.get('train')?.has('bench') && graph.get('bench')?.has('train')).toBeFalsy();
    expect(graph.get('train')?.has('bench') ?? false).toBe(false);
  });

  /** String literals in a file's code (comments removed), each with its line. */
  function literals(file: string): Array<{ value: string; line: number }> {
    const code = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
      .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
    return [...code.matchAll(/(['"`])((?:\\.|(?!\1)[^\\\n])*)\1/g)].map((m) => ({ value: m[2]!, line: code.slice(0, m.index).split('\n').length }));
  }
  const relative = (file: string) => path.relative(SRC, file).split(path.sep).join('/');

  it('backend names are written only in backend/ (its traits table) and the CLI\'s argument parsing', () => {
    const names = new Set(['tensorflow', 'webgpu', 'wasm', 'cpu', 'meta', 'meta-wasm']);
    const found = sourceFiles(SRC)
      .filter((file) => !/^(backend|cli)\//.test(relative(file)))
      .flatMap((file) => literals(file).filter((l) => names.has(l.value)).map((l) => `${relative(file)}:${l.line} '${l.value}'`));
    expect(found).toEqual([]);
  });

  it('memory-mode names are written only in the mode table (layers/memory-modes.ts)', () => {
    const names = new Set(['naive', 'bottleneck', 'layer', 'block', 'efficient']);
    const found = sourceFiles(SRC)
      .filter((file) => relative(file) !== 'layers/memory-modes.ts')
      .flatMap((file) => literals(file).filter((l) => names.has(l.value)).map((l) => `${relative(file)}:${l.line} '${l.value}'`));
    expect(found).toEqual([]);
  });

  it('the literal scan sees literals (the checks above can fail)', () => {
    const file = path.join(SRC, 'layers/memory-modes.ts');
    const values = literals(file).map((l) => l.value);
    expect(values).toEqual(expect.arrayContaining(['naive', 'bottleneck', 'layer', 'block']));
    expect(literals(path.join(SRC, 'backend/traits.ts')).map((l) => l.value)).toEqual(expect.arrayContaining(['wasm-heap', 'meta-wasm']));
  });

  it('no file in src/ is over 400 lines', () => {
    const long = sourceFiles(SRC)
      .map((file) => ({ file: path.relative(SRC, file), lines: readFileSync(file, 'utf8').split('\n').length }))
      .filter(({ lines }) => lines > 400);
    expect(long).toEqual([]);
  });
});

describe('importing the package', () => {
  /** The package URLs that importing `entry` resolves, in a fresh Node process. */
  function resolvedBy(entry: string): string[] {
    const dir = mkdtempSync(path.join(tmpdir(), 'resolutions-'));
    const record = path.join(dir, 'urls.txt');
    try {
      const child = spawnSync(
        process.execPath,
        ['--import', 'tsx', '--import', './test/helpers/record-resolutions.mjs', 'test/helpers/import-entry.ts', entry],
        { cwd: ROOT, env: { ...process.env, RECORD_RESOLUTIONS: record }, encoding: 'utf8', timeout: 120_000 },
      );
      expect(child.status, child.stderr).toBe(0);
      return readFileSync(record, 'utf8').split('\n').filter(Boolean);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const loads = (urls: string[], pkg: string) => urls.some((url) => url.includes(`/node_modules/${pkg}/`));

  it("import('efficient-densenet-tfjs') resolves neither sharp nor vega / vega-lite", () => {
    const urls = resolvedBy('efficient-densenet-tfjs');
    expect(loads(urls, '@tensorflow/tfjs')).toBe(true); // the hook sees the packages it should
    for (const pkg of ['sharp', 'vega', 'vega-lite']) expect(loads(urls, pkg), pkg).toBe(false);
  });

  it("import('efficient-densenet-tfjs/train') does load them (the check above can fail)", () => {
    const urls = resolvedBy('efficient-densenet-tfjs/train');
    expect(loads(urls, 'sharp')).toBe(true);
    expect(loads(urls, 'vega')).toBe(true);
  });
});
