/**
 * What this JavaScript engine's WebAssembly supports, asked the way engines are asked: by validating a tiny
 * module that uses the feature (nothing is compiled or run). Each module is written out byte by byte below.
 */

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/** Type section: one function type () → v128. Function section: one function of type 0. */
const V128_FUNCTION = [0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00];
/** i32.const 0; i8x16.splat — a v128 on the stack. */
const SPLAT = [0x41, 0x00, 0xfd, 0x0f];

/** A code section holding one function body (no locals) made of `instructions` and `end`. */
function codeSection(instructions: number[]): number[] {
  const body = [0x00, ...instructions, 0x0b];
  return [0x0a, body.length + 2, 0x01, body.length, ...body];
}

/** SIMD128: returns a splat. */
const SIMD_MODULE = [...HEADER, ...V128_FUNCTION, ...codeSection(SPLAT)];
/** Relaxed SIMD: f32x4.relaxed_madd (0xfd 0x105, LEB128 0x85 0x02) of three splats — what an FMA kernel needs. */
export const RELAXED_SIMD_MODULE = [...HEADER, ...V128_FUNCTION, ...codeSection([...SPLAT, ...SPLAT, ...SPLAT, 0xfd, 0x85, 0x02])];
/** Threads: a shared memory (flags 0x03: shared, with a maximum), 1 page of at most 1. */
const THREADS_MODULE = [...HEADER, 0x05, 0x04, 0x01, 0x03, 0x01, 0x01];

export interface WasmFeatures {
  simd: boolean;
  relaxedSimd: boolean;
  /** Shared memories validate and SharedArrayBuffer exists (what a threaded build needs of the engine). */
  threads: boolean;
}

/** The engine's WebAssembly (the project compiles without the DOM typings that declare it). */
const engine = (globalThis as unknown as { WebAssembly?: { validate(bytes: Uint8Array): boolean } }).WebAssembly;

function validates(bytes: number[]): boolean {
  try {
    return engine?.validate(new Uint8Array(bytes)) ?? false;
  } catch {
    return false;
  }
}

export function wasmFeatures(): WasmFeatures {
  return {
    simd: validates(SIMD_MODULE),
    relaxedSimd: validates(RELAXED_SIMD_MODULE),
    threads: validates(THREADS_MODULE) && typeof SharedArrayBuffer === 'function',
  };
}
