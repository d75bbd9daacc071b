/**
 * Relaxed SIMD (f32x4.relaxed_madd: the own GEMM's fused multiply-add) without a command-line flag. Node 20's
 * V8 has it behind --experimental-wasm-relaxed-simd; set through v8.setFlagsFromString at run time, before
 * our module is compiled, it takes effect (checked: WebAssembly.validate turns true, the module compiles and
 * runs). V8 flags are per process, so worker threads see it too — whichever thread sets it first — while
 * `new Worker(…, { execArgv: ['--experimental-wasm-relaxed-simd'] })` is refused (ERR_WORKER_INVALID_EXEC_ARGV).
 * Node ≥ 22 has relaxed SIMD on by default and never reaches the flag; browsers decide for themselves.
 */
import { importNodeBuiltin, isNode } from '../../../util/node.js';
import { wasmFeatures } from '../../doctor/wasm-features.js';

export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

/** Where relaxed SIMD came from, when the own GEMM can use it. */
export type RelaxedSimdSource = 'engine' | 'flag set at run time' | null;

/** Turns relaxed SIMD on where the engine has it behind its flag; says whether (and how) it is there now. */
export async function enableRelaxedSimd(): Promise<RelaxedSimdSource> {
  if (wasmFeatures().relaxedSimd) return 'engine';
  if (!isNode()) return null;
  const v8 = await importNodeBuiltin<{ setFlagsFromString(flags: string): void }>('node:v8', 'enabling relaxed SIMD');
  v8.setFlagsFromString(RELAXED_SIMD_FLAG);
  return wasmFeatures().relaxedSimd ? 'flag set at run time' : null;
}
