/**
 * Every difference between the real backends a meta backend mirrors, as data: one entry per flavour. Kernels
 * consult the traits of their backend's flavour (MetaBackend.traits) and never test the flavour's name, so a
 * new flavour is one entry here plus its backend name.
 *
 * The entries were read from the 4.22 kernels of tfjs-backend-cpu and tfjs-backend-wasm; the differential
 * tests in test/meta-backend.test.ts compare every case against both real backends.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Validations that only some backends make, each with that backend's own error message (in the kernels
 * named here).
 */
export type MetaCheck =
  /** Concat, FusedBatchNorm: cpu's assertNotComplex (most kernels check on every backend). */
  | 'complexInConcatAndBatchNorm'
  /** FusedBatchNorm: mean, variance, offset and scale of equal rank. */
  | 'batchNormRanks'
  /** Slice, SplitV, StridedSlice (simple slices): slice_util.assertParamsValid. */
  | 'sliceBounds'
  /** Cast: a lossy cast to anything but int32 or bool throws. */
  | 'lossyCastTargets'
  /** ZerosLike, OnesLike: string tensors are refused. */
  | 'noStringZerosOnesLike'
  /** Softmax: only along the last dimension. */
  | 'softmaxLastDim'
  /** BatchMatMul, _FusedMatMul: float32 operands only. */
  | 'float32MatMul'
  /** MaxPool: float32 input only. */
  | 'float32MaxPool'
  /** Cumsum, Cumprod: float32 and int32 only. */
  | 'cumulativeDtypes'
  /** Conv2D: channelsLast (NHWC) only. */
  | 'channelsLastConv';

export interface FlavorTraits {
  /** The meta backend's name, as given to tf.setBackend. */
  readonly backendName: string;
  /** Kernels of the meta set that the mirrored backend lacks: left unregistered so that programs fail alike. */
  readonly lacks: readonly string[];
  /**
   * What the project's own set-up of the mirrored backend changes (initBackend registering kernels), applied
   * on its meta backend by registerMetaWasmTrainingKernels() (for wasm): kernels it adds and whether Identity
   * then aliases.
   */
  readonly trainingSetup?: { readonly adds: readonly string[]; readonly identityAliases: boolean };

  // Aliasing: where the mirrored kernel hands back its input's buffer (one more reference, no new bytes).
  /**
   * Identity, and Reverse of a scalar (cpu's calls Identity; wasm's calls its own copying Identity even with
   * the aliasing override, which meta-wasm after registerMetaWasmTrainingKernels() does not model).
   */
  readonly identityAliases: boolean;
  /** Cast that loses nothing (same dtype, bool->int32/float32, int32->float32) relabels the buffer. */
  readonly castAliasesLossless: boolean;
  /** Concat with exactly one non-empty input returns that input. */
  readonly concatSingleAliases: boolean;
  /** MaxPool/AvgPool with a 1x1 window that keeps the shape return the input. */
  readonly poolIdentityAliases: boolean;

  // Output dtypes: 'input' keeps the (first) input's dtype.
  /** Conv2D, FusedConv2D, MaxPool, AvgPool. */
  readonly convDtype: 'input' | 'float32';
  /** MaxPoolGrad, AvgPoolGrad ('input': the pooled input's dtype). */
  readonly poolGradDtype: 'input' | 'float32';
  /** ResizeNearestNeighbor and its gradient ('input': the images' dtype). */
  readonly resizeNearestDtype: 'input' | 'float32';
  /** Sum, Prod, Cumsum, Cumprod: 'atLeastInt32' upcasts bool to int32. */
  readonly sumDtype: 'input' | 'atLeastInt32';
  /** Select: 'upcast' of t and e, or t's dtype. */
  readonly selectDtype: 'upcast' | 'then';
  readonly floorDivDtype: 'input' | 'int32';
  readonly logicalNotDtype: 'input' | 'bool';
  readonly expm1Dtype: 'input' | 'float32';
  readonly softmaxDtype: 'input' | 'float32';
  /** A strided (non-contiguous) StridedSlice. */
  readonly stridedSliceDtype: 'input' | 'float32';

  // Shapes
  /** Prelu broadcasts x with alpha (else keeps x's shape). */
  readonly preluBroadcasts: boolean;
  /** ResizeBilinearGrad returns [batch, width, height, depth] (a transposition bug in tfjs-backend-cpu 4.22). */
  readonly resizeBilinearGradSwapsHW: boolean;
  /**
   * The fused kernels' rules: 'applyActivation' validates and shapes like cpu's applyActivation (bias and
   * prelu broadcast, leakyrelu/prelu give float32); 'fusedXnnpack' like wasm's (a fixed activation list,
   * rank-1 bias, NHWC, the product's shape and dtype).
   */
  readonly fusedRules: 'applyActivation' | 'fusedXnnpack';
  /** GatherV2 of an empty x returns early, leaving one reference to x and to indices behind. */
  readonly gatherEmptyLeaksInputs: boolean;

  readonly checks: ReadonlySet<MetaCheck>;
}

export const FLAVORS = {
  /** Backend 'meta' mirrors tfjs-backend-cpu. */
  cpu: {
    backendName: 'meta',
    lacks: [tf.LogicalXor],
    identityAliases: true,
    castAliasesLossless: true,
    concatSingleAliases: true,
    poolIdentityAliases: true,
    convDtype: 'input',
    poolGradDtype: 'float32',
    resizeNearestDtype: 'input',
    sumDtype: 'atLeastInt32',
    selectDtype: 'upcast',
    floorDivDtype: 'int32',
    logicalNotDtype: 'bool',
    expm1Dtype: 'input',
    softmaxDtype: 'float32',
    stridedSliceDtype: 'input',
    preluBroadcasts: true,
    resizeBilinearGradSwapsHW: true,
    fusedRules: 'applyActivation',
    gatherEmptyLeaksInputs: false,
    checks: new Set<MetaCheck>([
      'complexInConcatAndBatchNorm', 'batchNormRanks', 'sliceBounds', 'lossyCastTargets', 'noStringZerosOnesLike', 'softmaxLastDim',
    ]),
  },
  /** Backend 'meta-wasm' mirrors tfjs-backend-wasm (stock, until registerMetaWasmTrainingKernels()). */
  wasm: {
    backendName: 'meta-wasm',
    lacks: [tf.Conv2DBackpropFilter],
    // initBackend('wasm') adds Conv2DBackpropFilter and an aliasing Identity (src/backend/wasm/register.ts).
    trainingSetup: { adds: [tf.Conv2DBackpropFilter], identityAliases: true },
    identityAliases: false,
    castAliasesLossless: false,
    concatSingleAliases: false,
    poolIdentityAliases: false,
    convDtype: 'float32',
    poolGradDtype: 'input',
    resizeNearestDtype: 'float32',
    sumDtype: 'input',
    selectDtype: 'then',
    floorDivDtype: 'input',
    logicalNotDtype: 'input',
    expm1Dtype: 'float32',
    softmaxDtype: 'input',
    stridedSliceDtype: 'float32',
    preluBroadcasts: false,
    resizeBilinearGradSwapsHW: false,
    fusedRules: 'fusedXnnpack',
    gatherEmptyLeaksInputs: true,
    checks: new Set<MetaCheck>(['float32MatMul', 'float32MaxPool', 'cumulativeDtypes', 'channelsLastConv']),
  },
} as const satisfies Record<string, FlavorTraits>;

/** Which real backend a meta backend mirrors, kernel by kernel. */
export type MetaFlavor = keyof typeof FLAVORS;

export const META_FLAVORS = Object.keys(FLAVORS) as MetaFlavor[];

export function isMetaFlavor(flavor: unknown): flavor is MetaFlavor {
  return typeof flavor === 'string' && Object.hasOwn(FLAVORS, flavor);
}

/** Throws, naming the caller and the flavours allowed, unless `flavor` is one. */
export function assertMetaFlavor(caller: string, flavor: unknown): asserts flavor is MetaFlavor {
  if (!isMetaFlavor(flavor)) {
    const allowed = META_FLAVORS.map((f) => `'${f}'`);
    const list = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}` : allowed.join('');
    throw new Error(`${caller}: flavor must be ${list}, got ${String(flavor)}`);
  }
}

/** Flavours whose training set-up has been applied (process-wide, as kernel registration is). */
const setUp = new Set<MetaFlavor>();
const effective = new Map<MetaFlavor, FlavorTraits>();

/** The traits a flavour's kernels see now: its table entry, with its training set-up once applied. */
export function traitsOf(flavor: MetaFlavor): FlavorTraits {
  let traits = effective.get(flavor);
  if (traits == null) {
    const base: FlavorTraits = FLAVORS[flavor];
    const setup = setUp.has(flavor) ? base.trainingSetup : undefined;
    traits = setup == null ? base : { ...base, identityAliases: setup.identityAliases };
    effective.set(flavor, traits);
  }
  return traits;
}

/** Applies a flavour's training set-up; returns the kernels it adds (none when the flavour has no set-up). */
export function applyTrainingSetup(flavor: MetaFlavor): readonly string[] {
  setUp.add(flavor);
  effective.delete(flavor);
  return traitsOf(flavor).trainingSetup?.adds ?? [];
}

/** Kernels a flavour has beyond the base set: those its training set-up added, once applied. */
export function addedKernels(flavor: MetaFlavor): readonly string[] {
  return setUp.has(flavor) ? (traitsOf(flavor).trainingSetup?.adds ?? []) : [];
}

/** Backend name of the meta backend that mirrors the `cpu` backend. */
export const META_BACKEND_NAME = FLAVORS.cpu.backendName;
/** Backend name of the meta backend that mirrors the `wasm` backend. */
export const META_WASM_BACKEND_NAME = FLAVORS.wasm.backendName;
