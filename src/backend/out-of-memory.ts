/**
 * The wasm backend's heap stops at 4 GiB; past it an allocation fails deep inside the module with messages
 * like "memory access out of bounds". This recognises such failures; memory/out-of-memory-advice.ts turns
 * them into an error a researcher can act on.
 */
export class OutOfMemoryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutOfMemoryError';
  }
}

// 'table index is out of bounds': a failed wasm malloc returns 0, and the kernel then writes over the module's
// low memory (its function table indices) before anything reports the allocation.
const OOM_PATTERNS = [/memory access out of bounds/i, /table index is out of bounds/i, /out of memory/i, /Aborted\(OOM\)/i, /WebAssembly\.Memory/i, /Cannot enlarge memory/i, /Array buffer allocation failed/i, /Invalid typed array length/i, /OOM when allocating/i];

export function looksLikeOutOfMemory(error: unknown): boolean {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return OOM_PATTERNS.some((pattern) => pattern.test(message));
}
