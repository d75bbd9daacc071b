/** Registration of the meta backends (one per flavour, see flavors.ts) and of their kernels. */
import * as tf from '@tensorflow/tfjs';
import { MetaBackend } from './backend.js';
import { addedKernels, applyTrainingSetup, assertMetaFlavor, FLAVORS, META_FLAVORS, type MetaFlavor } from './flavors.js';
import type { MetaKernel, MetaKernelTable } from './helpers.js';
import { batchNormKernels } from './kernels/batch-norm.js';
import { convolutionKernels } from './kernels/convolution.js';
import { creationKernels } from './kernels/creation.js';
import { elementwiseKernels } from './kernels/elementwise.js';
import { imageKernels } from './kernels/images.js';
import { matMulKernels } from './kernels/matmul.js';
import { poolingKernels } from './kernels/pooling.js';
import { reductionKernels } from './kernels/reductions.js';
import { shapeKernels } from './kernels/shape.js';
import { softmaxKernels } from './kernels/softmax.js';

/** Far below cpu (1) and wasm/webgl (2), so tfjs never picks a meta backend on its own. */
const META_PRIORITY = -1000;

/** Every meta kernel, by tfjs kernel name; each flavour registers those its real backend has. */
const KERNELS: MetaKernelTable = {
  ...elementwiseKernels,
  ...reductionKernels,
  ...shapeKernels,
  ...creationKernels,
  ...softmaxKernels,
  ...matMulKernels,
  ...convolutionKernels,
  ...poolingKernels,
  ...batchNormKernels,
  ...imageKernels,
};

function namesFor(flavor: MetaFlavor): string[] {
  const lacks: readonly string[] = FLAVORS[flavor].lacks;
  const added = addedKernels(flavor);
  return Object.keys(KERNELS).filter((k) => !lacks.includes(k) || added.includes(k)).sort();
}

/**
 * Names of the kernels the meta backend implements, sorted: for 'cpu' (backend 'meta', the default)
 * or 'wasm' (backend 'meta-wasm', which leaves out kernels the wasm backend lacks).
 */
export function metaKernelNames(flavor: MetaFlavor = 'cpu'): string[] {
  assertMetaFlavor('metaKernelNames', flavor);
  return namesFor(flavor);
}

function asMeta(backend: unknown, kernel: string): MetaBackend {
  if (!(backend instanceof MetaBackend)) {
    throw new Error(`${kernel}: the meta kernels only run on a MetaBackend`);
  }
  return backend;
}

/**
 * Registers the backends 'meta' (mirrors cpu) and 'meta-wasm' (mirrors wasm) and their kernels.
 * Idempotent. Their priority is far below any real backend's, so tfjs only uses them after an explicit
 * `await tf.setBackend('meta')`.
 */
export function registerMetaBackend(): void {
  for (const flavor of META_FLAVORS) {
    const { backendName } = FLAVORS[flavor];
    if (tf.findBackendFactory(backendName) == null) {
      tf.registerBackend(backendName, () => new MetaBackend(flavor), META_PRIORITY);
    }
    for (const kernelName of namesFor(flavor)) registerOne(kernelName, backendName);
  }
}

/** Registers one meta kernel; returns false when the backend already has it. */
function registerOne(kernelName: string, backendName: string): boolean {
  if (tf.getKernel(kernelName, backendName) != null) return false;
  const impl = KERNELS[kernelName] as MetaKernel;
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = asMeta(backend, kernelName);
      for (const t of Object.values(inputs)) if (t != null) b.adopt(t);
      return impl(inputs, attrs ?? {}, b, kernelName);
    },
  });
  return true;
}

/** Mirrors on a flavour's meta backend what the project's set-up adds to its real backend; see flavors.ts. */
function registerTrainingSetup(flavor: MetaFlavor): string[] {
  const registered: string[] = [];
  for (const kernelName of applyTrainingSetup(flavor)) {
    if (registerOne(kernelName, FLAVORS[flavor].backendName)) registered.push(kernelName);
  }
  return registered;
}

/**
 * Gives 'meta-wasm' what `initBackend('wasm')` gives 'wasm' (src/backend/wasm/register.ts): the training
 * kernel Conv2DBackpropFilter (a fresh float32 buffer of the filter's shape) and an Identity that aliases,
 * so that it mirrors a wasm backend set up for training. Idempotent; returns the names registered by this
 * call.
 */
export function registerMetaWasmTrainingKernels(): string[] {
  return registerTrainingSetup('wasm');
}
