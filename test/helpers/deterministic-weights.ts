import { UsageError } from '../../src/util/errors.js';

/**
 * Deterministic stand-in weights for torchvision DenseNets, reproduced bit-for-bit by
 * scripts/make_torchvision_fixtures.py, so that parity fixtures for densenet121 need not ship its 32 MB
 * of weights.
 *
 * For the tensor with index t in the sorted state_dict names (num_batches_tracked excluded) and element i
 * in row-major PyTorch layout:
 *
 *   mix(x)  = lowbias32: x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16 (mod 2^32)
 *   seed    = mix((t + 1) * 0x9E3779B9 mod 2^32)
 *   u       = (mix((seed + i) mod 2^32) >> 8) / 2^24          (in [0, 1), exact in float32)
 *
 *   conv weight   [out, in, kh, kw]: (2u - 1) * sqrt(3 / (in * kh * kw))
 *   linear weight [out, in]:         (2u - 1) * sqrt(3 / in)
 *   linear bias:                     (2u - 1) * 0.1
 *   BN weight:    0.5 + u            BN bias:      (2u - 1) * 0.2
 *   running_mean: (2u - 1) * 0.2     running_var:  0.5 + u
 *
 * each evaluated in float64 in exactly that order and rounded once to float32.
 *
 * An integer hash is used instead of the common `frac(sin(x) * 43758.5453)` trick because sin is not
 * correctly rounded: V8 and glibc may differ in the last bit, which after scaling by 43758 would change
 * some float32 values. Every operation above (integer mixing, +, *, /, sqrt, float32 rounding) is exactly
 * specified by IEEE 754, so Python and JavaScript agree on every bit.
 */

export type TorchvisionTensorKind =
  | 'conv'
  | 'linear_weight'
  | 'linear_bias'
  | 'bn_weight'
  | 'bn_bias'
  | 'running_mean'
  | 'running_var';

function mix32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function tensorSeed(tensorIndex: number): number {
  return mix32(Math.imul(tensorIndex + 1, 0x9e3779b9));
}

/** The uniform `u` in [0, 1) for element `elementIndex` of the tensor at `tensorIndex`. */
export function deterministicUniform(tensorIndex: number, elementIndex: number): number {
  return (mix32(tensorSeed(tensorIndex) + elementIndex) >>> 8) / 16777216;
}

/**
 * Which formula a torchvision DenseNet state_dict entry gets. DenseNet names its BatchNorms norm0, norm1,
 * norm2, norm, norm5 and its only Linear `classifier`; 4-D weights are convolutions.
 */
export function classifyTorchvisionTensor(name: string, shape: readonly number[]): TorchvisionTensorKind {
  const parts = name.split('.');
  const leaf = parts[parts.length - 1];
  const module = parts[parts.length - 2] ?? '';
  if (leaf === 'running_mean') return 'running_mean';
  if (leaf === 'running_var') return 'running_var';
  if (module.startsWith('norm') && (leaf === 'weight' || leaf === 'bias')) {
    return leaf === 'weight' ? 'bn_weight' : 'bn_bias';
  }
  if (leaf === 'weight' && shape.length === 4) return 'conv';
  if (leaf === 'weight' && shape.length === 2) return 'linear_weight';
  if (leaf === 'bias' && shape.length === 1) return 'linear_bias';
  throw new UsageError(
    `classifyTorchvisionTensor: cannot tell the kind of ${JSON.stringify(name)} with shape [${shape.join(', ')}]; ` +
      'expected a norm*.weight|bias|running_mean|running_var, a 4-D conv weight, or a 2-D/1-D linear weight/bias',
  );
}

function checkShape(name: string, shape: readonly number[], kind: TorchvisionTensorKind): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new UsageError(`deterministicTorchvisionTensor: shape of ${JSON.stringify(name)} must be non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const rank = kind === 'conv' ? 4 : kind === 'linear_weight' ? 2 : 1;
  if (shape.length !== rank) {
    throw new UsageError(`deterministicTorchvisionTensor: ${JSON.stringify(name)} of kind ${kind} must have rank ${rank}, got shape [${shape.join(', ')}]`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(size) || size >= 2 ** 32) {
    throw new UsageError(`deterministicTorchvisionTensor: ${JSON.stringify(name)} has ${size} elements; at most 2^32 - 1 are allowed`);
  }
  return size;
}

/**
 * The float32 values of state_dict entry `name` (at `index` in the sorted names) with PyTorch `shape`.
 * `kind` defaults to what {@link classifyTorchvisionTensor} infers from the name.
 */
export function deterministicTorchvisionTensor(
  name: string,
  index: number,
  shape: readonly number[],
  kind: TorchvisionTensorKind = classifyTorchvisionTensor(name, shape),
): Float32Array {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new UsageError(`deterministicTorchvisionTensor: index of ${JSON.stringify(name)} must be a non-negative integer, got ${index}`);
  }
  const size = checkShape(name, shape, kind);
  let scale: number;
  let shift: number;
  switch (kind) {
    case 'conv':
      scale = Math.sqrt(3 / (shape[1]! * shape[2]! * shape[3]!));
      shift = -1;
      break;
    case 'linear_weight':
      scale = Math.sqrt(3 / shape[1]!);
      shift = -1;
      break;
    case 'linear_bias':
      scale = 0.1;
      shift = -1;
      break;
    case 'bn_bias':
    case 'running_mean':
      scale = 0.2;
      shift = -1;
      break;
    case 'bn_weight':
    case 'running_var':
      scale = 1;
      shift = 0.5;
      break;
  }
  const seed = tensorSeed(index);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 1) {
    const u = (mix32(seed + i) >>> 8) / 16777216;
    // Same operation order as the Python generator, so both round identically.
    out[i] = shift === -1 ? (2 * u - 1) * scale : 0.5 + u;
  }
  return out;
}

/**
 * The whole deterministic state_dict for the given (name, PyTorch shape) entries: names are sorted to
 * assign indices and num_batches_tracked buffers are skipped, exactly as the fixture generator does.
 * `indexOffset` shifts every index (make_float64_fixtures.py --densenet121 --seed S uses 1000·S).
 */
export function deterministicTorchvisionStateDict(
  entries: Iterable<readonly [string, readonly number[]]>,
  indexOffset = 0,
): Map<string, { shape: number[]; data: Float32Array }> {
  const specs = [...entries].filter(([name]) => !name.endsWith('num_batches_tracked'));
  specs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  specs.forEach(([name, shape], index) => {
    if (out.has(name)) throw new UsageError(`deterministicTorchvisionStateDict: duplicate name ${JSON.stringify(name)}`);
    out.set(name, { shape: [...shape], data: deterministicTorchvisionTensor(name, index + indexOffset, shape) });
  });
  return out;
}
