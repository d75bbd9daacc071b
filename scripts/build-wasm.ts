/**
 * Assembles the project's own WebAssembly into TypeScript modules holding the bytes, so the library needs no
 * assembler at run or build time: channel-sums.wat → channel-sums-wasm.ts, and scripts/gemm-wat.ts's two GEMM
 * builds → gemm-wasm.ts, exact-gemm.wat (the `exact` numerics) → exact-gemm-wasm.ts, and sgd.wat (the workers'
 * sharded update) → sgd-wasm.ts.
 * Run after editing either source: npx tsx scripts/build-wasm.ts
 * (test/wasm-sums.test.ts, test/wasm-gemm.test.ts and test/wasm-exact.test.ts check the committed modules are current)
 * npx tsx scripts/build-wasm.ts --wat DIR also writes the generated GEMM text (gemm-relaxed.wat, gemm-plain.wat) to DIR to read.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gemmWat } from './gemm-wat.js';
import {
  assembleChannelSums, assembleExactGemm, assembleSgd, CHANNEL_SUMS_TS, channelSumsModule, EXACT_GEMM_TS, exactGemmModule, GEMM_TS, gemmModule,
  SGD_TS, sgdModule,
} from './wasm-source.js';

const root = (file: string): string => fileURLToPath(new URL(`../${file}`, import.meta.url));

const sums = await assembleChannelSums();
await fs.writeFile(root(CHANNEL_SUMS_TS), channelSumsModule(sums));
process.stdout.write(`${root(CHANNEL_SUMS_TS)}: ${sums.length} bytes of wasm\n`);

await fs.mkdir(path.dirname(root(GEMM_TS)), { recursive: true });
await fs.writeFile(root(GEMM_TS), await gemmModule());
process.stdout.write(`${root(GEMM_TS)}: two GEMM builds\n`);

const exact = await assembleExactGemm();
await fs.writeFile(root(EXACT_GEMM_TS), exactGemmModule(exact));
process.stdout.write(`${root(EXACT_GEMM_TS)}: ${exact.length} bytes of wasm\n`);

const sgd = await assembleSgd();
await fs.writeFile(root(SGD_TS), sgdModule(sgd));
process.stdout.write(`${root(SGD_TS)}: ${sgd.length} bytes of wasm\n`);

const watArg = process.argv.indexOf('--wat');
if (watArg >= 0) {
  const dir = process.argv[watArg + 1] ?? '.';
  for (const variant of ['relaxed', 'plain'] as const) await fs.writeFile(path.join(dir, `gemm-${variant}.wat`), gemmWat(variant));
}
