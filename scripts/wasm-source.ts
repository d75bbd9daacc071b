/** Assembling src/backend/wasm/sums/channel-sums.wat with wabt (a devDependency), for the build script and its test. */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

export const CHANNEL_SUMS_WAT = 'src/backend/wasm/sums/channel-sums.wat';
export const CHANNEL_SUMS_TS = 'src/backend/wasm/sums/channel-sums-wasm.ts';

export async function assembleChannelSums(): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const source = await fs.readFile(fileURLToPath(new URL(`../${CHANNEL_SUMS_WAT}`, import.meta.url)), 'utf8');
  const parsed = wabt.parseWat('channel-sums.wat', source, { simd: true });
  try {
    parsed.validate();
    return parsed.toBinary({ log: false }).buffer;
  } finally {
    parsed.destroy();
  }
}

/** The float64-accumulating GEMM of the `exact` numerics (issue #23). */
export const EXACT_GEMM_WAT = 'src/backend/wasm/exact/exact-gemm.wat';
export const EXACT_GEMM_TS = 'src/backend/wasm/exact/exact-gemm-wasm.ts';

/** Assembles one of the project's .wat files (a path from the repository root). */
export async function assembleWat(path: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const source = await fs.readFile(fileURLToPath(new URL(`../${path}`, import.meta.url)), 'utf8');
  const parsed = wabt.parseWat(path, source, { simd: true });
  try {
    parsed.validate();
    return parsed.toBinary({ log: false }).buffer;
  } finally {
    parsed.destroy();
  }
}
