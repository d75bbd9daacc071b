/**
 * The stem: 7×7/2 conv (padding 3, no bias) → BN → ReLU → 3×3/2 max-pool (padding 1), torchvision's
 * `conv0`/`norm0`/`relu0`/`pool0`. Explicit padding: tfjs's 'same' pads asymmetrically on even sizes.
 */
import * as tf from '@tensorflow/tfjs';
import { inferenceBnRelu, naiveBnRelu } from '../norm/batch-norm.js';
import { stemPool, stemTailOp, stemTailRecomputeOp, STEM_POOL } from '../recompute/stem-ops.js';
import { integer } from '../util/validate.js';
import { kaimingNormal, seedFor } from './initializers.js';
import { MemoryModeLayer, singleInput, singleShape, type Kwargs, type LayerArgs, type MemoryModeArgs, type Shape } from './memory-mode-layer.js';
import { NormWeights, type LayerVariable } from './norm.js';

export interface StemArgs extends LayerArgs, MemoryModeArgs {
  /** Channels of the 7×7 convolution (numInitFeatures). */
  filters: number;
}

export const STEM_CONV = { size: 7, stride: 2, pad: 3 } as const;
const STEM_PADDING: [[number, number], [number, number], [number, number], [number, number]] = [
  [0, 0],
  [STEM_CONV.pad, STEM_CONV.pad],
  [STEM_CONV.pad, STEM_CONV.pad],
  [0, 0],
];

function outputSize(size: number | null, kernel: number, stride: number, pad: number): number | null {
  return size === null ? null : Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

export class Stem extends MemoryModeLayer {
  static className = 'DenseNetStem';
  readonly filters: number;
  private kernel?: LayerVariable;
  private norm?: NormWeights;

  constructor(args: StemArgs) {
    super(args);
    this.filters = integer('Stem: filters', args.filters ?? NaN) as number;
  }

  override build(inputShape: Shape | Shape[]): void {
    const channels = singleShape(inputShape)[3];
    if (channels !== 3) throw new Error(`Stem '${this.name}': input must have 3 channels (RGB, NHWC), got ${channels}`);
    const add = this.weightAdder();
    const shape = [STEM_CONV.size, STEM_CONV.size, channels, this.filters];
    this.kernel = add('conv0/kernel', shape, kaimingNormal(shape, seedFor(this.seed, 1)), true);
    this.norm = NormWeights.add(add, 'norm0', this.filters);
    this.built = true;
  }

  get parts(): { kernel: LayerVariable; norm: NormWeights } {
    if (!this.norm || !this.kernel) throw new Error(`Stem '${this.name}' is not built yet`);
    return { kernel: this.kernel, norm: this.norm };
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [n, h, w] = singleShape(inputShape);
    const size = (s: number | null) =>
      outputSize(outputSize(s, STEM_CONV.size, STEM_CONV.stride, STEM_CONV.pad), STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
    return [n, size(h), size(w), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = singleInput(inputs, `Stem '${this.name}'`);
    const { kernel, norm } = this.parts;
    if (!MemoryModeLayer.isTraining(kwargs)) {
      return tf.tidy(() =>
        stemPool(inferenceBnRelu(this.conv(x, kernel.read() as tf.Tensor4D), norm.affine(), norm.runningMean(), norm.runningVariance()) as tf.Tensor4D),
      );
    }
    const strategy = this.strategy('stem');
    if (strategy !== 'stored') {
      const w = kernel.read() as tf.Tensor4D;
      const conv = this.conv(x, w);
      // 'recompute-conv' keeps the network input instead of the convolution's output, 21× its size at 3 → 64 channels.
      const out =
        strategy === 'recompute-conv'
          ? stemTailRecomputeOp(conv, norm.training(), { image: x, kernel: w, convolve: (image, k) => this.conv(image, k) })
          : stemTailOp(conv, norm.training());
      conv.dispose();
      return out;
    }
    return tf.tidy(() => stemPool(naiveBnRelu(this.conv(x, kernel.read() as tf.Tensor4D), norm.training()) as tf.Tensor4D));
  }

  private conv(x: tf.Tensor4D, kernel: tf.Tensor4D): tf.Tensor4D {
    return tf.conv2d(x, kernel, STEM_CONV.stride, STEM_PADDING);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters };
  }
}
tf.serialization.registerClass(Stem);
