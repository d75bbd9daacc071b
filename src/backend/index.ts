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
 */
import * as tf from '@tensorflow/tfjs';
import { silentLogger, type Logger } from '../util/logger.js';
import { UsageError } from '../util/errors.js';
import { registerFileSystemRouter, setNativeFileSystem } from '../io/file-system.js';
import { BACKEND_TRAITS } from './traits.js';

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
  const logger = options.logger ?? silentLogger;
  const requested = name ?? process.env[BACKEND_ENV] ?? 'auto';
  const source = name !== undefined ? 'requested' : process.env[BACKEND_ENV] !== undefined ? `from ${BACKEND_ENV}` : 'default';
  if (!isBackendName(requested)) {
    throw new UsageError(`backend must be one of ${BACKEND_NAMES.join(', ')}; got '${requested}'${source.startsWith('from') ? ` (${source})` : ''}`);
  }
  // tfjs prints banners and warnings through console unless in production mode; the library must not.
  tf.env().set('PROD', true);
  // model.save('file://…') / tf.loadLayersModel('file://…') on every backend, not only tfjs-node's.
  registerFileSystemRouter();
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);

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
    const webgpu = await import('./webgpu/index.js');
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
      await initWasm();
      logger.info(`backend: wasm (no native TensorFlow: ${native.failures.map((f) => f.split(':')[0]).join(' and ')} did not load; ${noGpu}; see docs/gpu.md for GPU speed)`);
      return 'wasm';
    } catch (error) {
      await activate('cpu');
      logger.info(`backend: cpu (wasm failed: ${firstLine(error)}; cpu is very slow for convolutions)`);
      return 'cpu';
    }
  }
  switch (requested) {
    case 'webgpu': {
      // An Error (exit 1), not a UsageError: the request is valid, the machine lacks a package, driver or adapter.
      const webgpu = await import('./webgpu/index.js');
      const adapter = await webgpu.activateWebGPU();
      logger.info(`backend: webgpu (${webgpu.describeAdapter(adapter)}; ${source})`);
      return 'webgpu';
    }
    case 'wasm':
      await initWasm();
      break;
    case 'cpu':
      await activate('cpu');
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

/** Loaded here, not at import: a user who never trains on wasm never loads its module. */
async function initWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  const { registerWasmFastOverrides, registerWasmTrainingKernels } = await import('./wasm/index.js');
  registerWasmTrainingKernels();
  // Stock wasm's input gradients, pooling gradients and transposed products are 10× slower than its forward.
  registerWasmFastOverrides();
  await activate('wasm');
}
