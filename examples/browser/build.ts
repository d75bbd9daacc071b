/**
 * Builds the demo page (examples/browser/page) with esbuild into a folder a static server can serve:
 * index.html, the bundle (main.js and its chunks: tfjs-backend-webgpu loads as a chunk of its own) and
 * tfjs-backend-wasm's .wasm files, which a bundler does not copy (the page points initBackend's `wasmPaths`
 * at this folder). The page imports the package by name; here the name maps to the sources.
 */
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
export const DEFAULT_OUT_DIR = path.join(HERE, 'dist');

export async function buildDemo(outDir = DEFAULT_OUT_DIR): Promise<string> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(HERE, 'page/main.ts')],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: outDir,
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
    alias: {
      'efficient-densenet-tfjs': path.join(ROOT, 'src/index.ts'),
      'efficient-densenet-tfjs/weights': path.join(ROOT, 'src/weights/index.ts'),
    },
  });
  await copyFile(path.join(HERE, 'page/index.html'), path.join(outDir, 'index.html'));
  // tfjs-backend-wasm's binaries (plain, SIMD, threaded SIMD): tfjs picks one by what the browser supports.
  const wasmDir = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  for (const name of await readdir(path.join(wasmDir, 'dist'))) {
    if (name.endsWith('.wasm')) await copyFile(path.join(wasmDir, 'dist', name), path.join(outDir, name));
  }
  return outDir;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const outDir = await buildDemo(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  process.stdout.write(`built the demo page into ${path.relative(process.cwd(), outDir) || '.'}\n`);
}
