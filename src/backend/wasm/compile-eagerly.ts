/**
 * tfjs-backend-wasm's module compiled by TurboFan when it loads, not tiered up while training. V8 compiles
 * WebAssembly with its baseline compiler (Liftoff) and recompiles hot functions with TurboFan in background
 * threads ("dynamic tiering"). For tfjs's XNNPACK kernels that took about six DenseNet-121 training steps,
 * each faster than the one before — in one process 2,832 → 2,363 ms, in two data-parallel workers 1,963 →
 * 1,350 ms, where one worker's recompiling stalls both at their batch-norm barriers — while compiling
 * everything at load made the first step after warm-up a steady one (2,486, then 2,336–2,438 ms) and the
 * backend's start no slower (1,145 vs 1,099 ms; 112² batch 16, `layer`, this 2-core machine). Node only:
 * set through v8.setFlagsFromString before the module compiles; V8 flags are per process, so worker threads
 * compile the same way. Browsers decide for themselves.
 */
import { importNodeBuiltin, isNode } from '../../util/node.js';

export const EAGER_COMPILE_FLAG = '--no-wasm-dynamic-tiering';

/** Asks V8 to compile WebAssembly with TurboFan up front; false where it cannot be asked (a browser). */
export async function compileWasmEagerly(): Promise<boolean> {
  if (!isNode()) return false;
  const v8 = await importNodeBuiltin<{ setFlagsFromString(flags: string): void }>('node:v8', 'compiling WebAssembly eagerly');
  v8.setFlagsFromString(EAGER_COMPILE_FLAG);
  return true;
}
