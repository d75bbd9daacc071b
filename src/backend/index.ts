/**
 * Backend choice, made once at the edge (the CLI or the user's script):
 * - `tensorflow`: TensorFlow's kernels through @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node;
 * - `wasm`: the embedded default, with the training kernels stock wasm lacks registered;
 * - `webgpu`: tfjs-backend-webgpu on Dawn (optional packages `webgpu` and @tensorflow/tfjs-backend-webgpu): a GPU
 *   through Vulkan/Metal/D3D12 without CUDA, or Mesa's software adapter (correct, slow);
 * - `cpu`: pure JavaScript; only for tiny models;
 * - `meta` / `meta-wasm`: shapes only, no compute — exact memory planning in seconds (mirroring cpu's or
 *   wasm's buffer aliasing);
 * - `auto`: tensorflow if it loads, else webgpu if its adapter is a hardware one, else wasm, else cpu.
 * In a browser (no Node): `webgpu` is the page's navigator.gpu, `tensorflow` does not exist, and `auto` is
 * webgpu on a hardware adapter, else wasm, else cpu; the file:// handlers are Node's only.
 */
import * as tf from '@tensorflow/tfjs';
import { silentLogger, type Logger } from '../util/logger.js';
import { UsageError } from '../util/errors.js';
import { registerFileSystemRouter, setNativeFileSystem } from '../io/file-system.js';
import { environmentVariable, isNode } from '../util/node.js';
import { BACKEND_TRAITS, backendTraits } from './traits.js';
import { DEFAULT_NUMERICS, NUMERICS, NUMERICS_ENV, parseNumerics, type Numerics } from './numerics.js';

export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu', 'meta', 'meta-wasm'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
/** The backends that compute values (meta and meta-wasm only plan memory): what train and predict accept. */
export const COMPUTING_BACKENDS = BACKEND_NAMES.filter((b) => b === 'auto' || BACKEND_TRAITS[b].computes);
export type ResolvedBackend = Exclude<BackendName, 'auto'>;

/** The environment variable that picks the backend when none is given. */
export const BACKEND_ENV = 'EFFICIENT_DENSENET_BACKEND';

export interface InitBackendOptions {
  /** Receives one line saying which backend was chosen and why. */
  logger?: Logger;
  /**
   * Where tfjs-backend-wasm's `.wasm` files are served from, for a page (tfjs's `setWasmPaths`: a URL prefix
   * ending in '/', or a map from file name to URL). A bundler does not copy them next to the bundle; the
   * README's "In the browser" says how. Node finds them in node_modules and needs none.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * How convolutions and matrix products sum (./numerics.ts): `fast` (default) the backend's own float32
   * sums, `exact` float64 sums rounded once (wasm; elsewhere the backend's own). Unset: the environment
   * variable EFFICIENT_DENSENET_NUMERICS, else `fast`.
   */
  numerics?: Numerics;
}

export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** Loads TensorFlow's native backend; returns the package that loaded or the reasons none did. */
async function loadNative(): Promise<{ loaded?: string; failures: string[] }> {
  const failures: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      await import(pkg);
      if (tf.findBackendFactory('tensorflow') != null) return { loaded: pkg, failures };
      failures.push(`${pkg} loaded but registered no 'tensorflow' backend`);
    } catch (error) {
      failures.push(`${pkg}: ${firstLine(error)}`);
    }
  }
  return { failures };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

async function activate(name: ResolvedBackend): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
}

/**
 * Selects and readies a backend; returns its name. With no name, the environment variable
 * EFFICIENT_DENSENET_BACKEND decides, else 'auto'. A named backend that cannot load throws an Error
 * saying what to install. Also registers the training kernels we add to a backend and the file://
 * model handlers: importing the package changes nothing; this call is where set-up happens.
 */
export async function initBackend(name?: BackendName | string, options: InitBackendOptions = {}): Promise<ResolvedBackend> {
  const fromEnvironment = environmentVariable(NUMERICS_ENV);
  const numerics = options.numerics !== undefined ? parseNumerics(options.numerics)
    : fromEnvironment !== undefined ? parseNumerics(fromEnvironment, NUMERICS_ENV) : DEFAULT_NUMERICS;
  const resolved = await selectBackend(name, options);
  await setNumerics(numerics, options.logger ?? silentLogger);
  return resolved;
}

let current: Numerics = DEFAULT_NUMERICS;

/** The numerics last set (initBackend or setNumerics): what data-parallel workers are started with. */
export function currentNumerics(): Numerics {
  return current;
}

/**
 * Switches the current backend's numerics (see initBackend's `numerics`): on wasm, registers or removes the
 * float64-accumulating kernels; other backends keep their own sums (`exact` says so through the logger).
 */
export async function setNumerics(numerics: Numerics, logger: Logger = silentLogger): Promise<void> {
  parseNumerics(numerics);
  current = numerics;
  const exact = NUMERICS[numerics].exactKernels;
  const exactSums = backendTraits().exactSums;
  if (exactSums === 'option') {
    // Only wasm has optional exact kernels (traits.ts).
    const { registerWasmExactKernels, unregisterWasmExactKernels } = await import('./wasm/exact/register.js');
    if (exact) registerWasmExactKernels();
    else unregisterWasmExactKernels();
    if (exact) logger.info(`numerics: ${numerics} (${NUMERICS[numerics].summary})`);
  } else if (exactSums === 'always') {
    if (exact) logger.info(`numerics: ${numerics} (${tf.getBackend()} always sums convolutions and products in float64)`);
  } else if (exact) {
    logger.info(`numerics: ${numerics} has no float64 kernels on ${tf.getBackend()}; its own sums are used`);
  }
}

async function selectBackend(name: BackendName | string | undefined, options: InitBackendOptions): Promise<ResolvedBackend> {
  const logger = options.logger ?? silentLogger;
  const fromEnvironment = environmentVariable(BACKEND_ENV);
  const requested = name ?? fromEnvironment ?? 'auto';
  const source = name !== undefined ? 'requested' : fromEnvironment !== undefined ? `from ${BACKEND_ENV}` : 'default';
  if (!isBackendName(requested)) {
    throw new UsageError(`backend must be one of ${BACKEND_NAMES.join(', ')}; got '${requested}'${source.startsWith('from') ? ` (${source})` : ''}`);
  }
  // tfjs prints banners and warnings through console unless in production mode; the library must not.
  tf.env().set('PROD', true);
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const inBrowser = !isNode();
  if (inBrowser && (requested === 'auto' || requested === 'tensorflow' || requested === 'webgpu')) {
    return initGpuInBrowser(requested, source, logger, options.wasmPaths);
  }
  // model.save('file://…') / tf.loadLayersModel('file://…') on every backend, not only tfjs-node's (Node's file system).
  if (!inBrowser) registerFileSystemRouter();

  if (requested === 'tensorflow' || requested === 'auto') {
    const native = await loadNative();
    if (native.loaded) {
      setNativeFileSystem(true);
      await activate('tensorflow');
      logger.info(`backend: tensorflow (${native.loaded}; ${source})`);
      return 'tensorflow';
    }
    if (requested === 'tensorflow') {
      throw new UsageError(
        `backend 'tensorflow' needs @tensorflow/tfjs-node-gpu@4.22.0 (CUDA) or @tensorflow/tfjs-node@4.22.0 installed: ${native.failures.join('; ')}`,
      );
    }
    // Loaded only now: the webgpu packages are optional and Dawn is native code.
    const webgpu = await importNodeWebGPU();
    const search = await webgpu.findWebGPUAdapter();
    let noGpu = search.found ? `webgpu has only a software ${webgpu.describeAdapter(search.adapter)}` : `webgpu: ${search.reason}`;
    if (search.found && !search.adapter.software) {
      try {
        await webgpu.activateWebGPU(search);
        logger.info(`backend: webgpu (${webgpu.describeAdapter(search.adapter)}; no native TensorFlow; ${source})`);
        return 'webgpu';
      } catch (error) {
        noGpu = `webgpu failed: ${firstLine(error)}`;
      }
    }
    try {
      await initWasm(options.wasmPaths);
      logger.info(`backend: wasm (no native TensorFlow: ${native.failures.map((f) => f.split(':')[0]).join(' and ')} did not load; ${noGpu}; see docs/gpu.md for GPU speed)`);
      return 'wasm';
    } catch (error) {
      await activateCpu();
      logger.info(`backend: cpu (wasm failed: ${firstLine(error)}; cpu is very slow for convolutions)`);
      return 'cpu';
    }
  }
  switch (requested) {
    case 'webgpu': {
      // An Error (exit 1), not a UsageError: the request is valid, the machine lacks a package, driver or adapter.
      const webgpu = await importNodeWebGPU();
      const adapter = await webgpu.activateWebGPU();
      logger.info(`backend: webgpu (${webgpu.describeAdapter(adapter)}; ${source})`);
      return 'webgpu';
    }
    case 'wasm':
      await initWasm(options.wasmPaths);
      break;
    case 'cpu':
      await activateCpu();
      break;
    case 'meta':
    case 'meta-wasm': {
      const meta = await import('./meta/index.js');
      meta.registerMetaBackend();
      meta.registerMetaWasmTrainingKernels();
      await activate(requested === 'meta' ? meta.META_BACKEND_NAME : meta.META_WASM_BACKEND_NAME);
      break;
    }
  }
  logger.info(`backend: ${requested} (${source})`);
  return requested;
}

/**
 * Dawn's set-up (./webgpu/index.ts: node:child_process, node:fs, the native `webgpu` package) is Node's
 * only. Its specifier reaches import() as a runtime value so that browser bundlers do not follow it (they
 * would fail on its node: imports); Node, tsx and vitest resolve it relative to this module as usual. (A
 * bundle made for Node lacks it too: such a bundle should keep this package external.)
 */
const NODE_WEBGPU_MODULE: string = './webgpu/index.js';
function importNodeWebGPU(): Promise<typeof import('./webgpu/index.js')> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_WEBGPU_MODULE);
}

/** A page's auto and webgpu: navigator.gpu (a hardware adapter for `auto`), else wasm, else cpu; no native TensorFlow there. */
async function initGpuInBrowser(
  requested: 'auto' | 'tensorflow' | 'webgpu',
  source: string,
  logger: Logger,
  wasmPaths: InitBackendOptions['wasmPaths'],
): Promise<ResolvedBackend> {
  if (requested === 'tensorflow') {
    throw new UsageError(`backend 'tensorflow' (tfjs-node) runs only in Node; in a browser use webgpu, wasm or cpu`);
  }
  const webgpu = await import('./webgpu/browser.js');
  const search = await webgpu.findBrowserWebGPUAdapter();
  if (requested === 'webgpu') {
    const adapter = await webgpu.activateBrowserWebGPU(search);
    logger.info(`backend: webgpu (adapter "${adapter.name}"${adapter.software ? ', software: correct but slow' : ''}; ${source})`);
    return 'webgpu';
  }
  // As in Node: a software adapter (SwiftShader) is slower than wasm, so auto passes it over.
  let noGpu = search.found ? `webgpu has only the software adapter "${search.adapter.name}"` : `webgpu: ${search.reason}`;
  if (search.found && !search.adapter.software) {
    try {
      const adapter = await webgpu.activateBrowserWebGPU(search);
      logger.info(`backend: webgpu (adapter "${adapter.name}"; ${source})`);
      return 'webgpu';
    } catch (error) {
      noGpu = `webgpu failed: ${firstLine(error)}`;
    }
  }
  try {
    await initWasm(wasmPaths);
    logger.info(`backend: wasm (${noGpu}; ${source})`);
    return 'wasm';
  } catch (error) {
    await activateCpu();
    logger.info(`backend: cpu (${noGpu}; wasm failed: ${firstLine(error)}; cpu is very slow for convolutions)`);
    return 'cpu';
  }
}

/** tfjs's cpu backend with our exactly summed convolutions and products (./cpu). */
async function activateCpu(): Promise<void> {
  const { registerCpuExactKernels } = await import('./cpu/index.js');
  registerCpuExactKernels();
  await activate('cpu');
}

/** Loaded here, not at import: a user who never trains on wasm never loads its module. */
async function initWasm(wasmPaths?: InitBackendOptions['wasmPaths']): Promise<void> {
  const wasmBackend = await import('@tensorflow/tfjs-backend-wasm');
  if (wasmPaths !== undefined) wasmBackend.setWasmPaths(wasmPaths);
  if (!isNode()) {
    // Our float64 channel sums instantiate a module on wasm's memory, declared unshared: tfjs's threaded
    // build (chosen in cross-origin-isolated pages) has a shared one, which that module cannot import.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  }
  const { compileWasmEagerly, enableRelaxedSimd, registerWasmFastOverrides, registerWasmTrainingKernels } = await import('./wasm/index.js');
  // Node 20 has relaxed SIMD (our GEMM's fused multiply-add) behind a V8 flag that works when set at run time.
  await enableRelaxedSimd();
  // Full speed from the first step: no tiering up during training (./wasm/compile-eagerly.ts).
  await compileWasmEagerly();
  registerWasmTrainingKernels();
  // Stock wasm's input gradients, pooling gradients and transposed products are 10× slower than its forward.
  registerWasmFastOverrides();
  await activate('wasm');
}
