/**
 * A transition between dense blocks: BN → ReLU → 1×1 conv (to `outputChannels`) → 2×2/2 average pool
 * (torchvision's `_Transition`).
 */
import * as tf from '@tensorflow/tfjs';
import { inferenceBnRelu, naiveBnRelu } from '../norm/batch-norm.js';
import { conv1x1 } from '../recompute/dense-ops.js';
import { transitionOp, transitionPool } from '../recompute/stage-ops.js';
import { integer } from '../util/validate.js';
import { kaimingNormal, seedFor } from './initializers.js';
import { MemoryModeLayer, singleInput, singleShape, type Kwargs, type LayerArgs, type MemoryModeArgs, type Shape } from './memory-mode-layer.js';
import { NormWeights, type LayerVariable } from './norm.js';

export interface TransitionArgs extends LayerArgs, MemoryModeArgs {
  /** Channels after the 1×1 convolution (torchvision: half the input). */
  outputChannels: number;
}

export class Transition extends MemoryModeLayer {
  static className = 'Transition';
  readonly outputChannels: number;
  private norm?: NormWeights;
  private kernel?: LayerVariable;

  constructor(args: TransitionArgs) {
    super(args);
    this.outputChannels = integer('Transition: outputChannels', args.outputChannels ?? NaN) as number;
  }

  override build(inputShape: Shape | Shape[]): void {
    const channels = singleShape(inputShape)[3];
    if (typeof channels !== 'number') throw new Error(`Transition '${this.name}': the input channel count must be known`);
    const add = this.weightAdder();
    const shape = [1, 1, channels, this.outputChannels];
    this.norm = NormWeights.add(add, 'norm', channels);
    this.kernel = add('conv/kernel', shape, kaimingNormal(shape, seedFor(this.seed, 1)), true);
    this.built = true;
  }

  get parts(): { norm: NormWeights; kernel: LayerVariable } {
    if (!this.norm || !this.kernel) throw new Error(`Transition '${this.name}' is not built yet`);
    return { norm: this.norm, kernel: this.kernel };
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [n, h, w] = singleShape(inputShape);
    const half = (size: number | null) => (size === null ? null : Math.floor(size / 2));
    return [n, half(h), half(w), this.outputChannels];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = singleInput(inputs, `Transition '${this.name}'`);
    const { norm, kernel } = this.parts;
    const w = kernel.read() as tf.Tensor4D;
    if (!MemoryModeLayer.isTraining(kwargs)) {
      return tf.tidy(() => conv1x1(transitionPool(inferenceBnRelu(x, norm.affine(), norm.runningMean(), norm.runningVariance()) as tf.Tensor4D), w));
    }
    const strategy = this.strategy('transition');
    if (strategy === 'recompute') return transitionOp(x, norm.training(), w);
    // Its input is the dense block's output, which the block keeps: walking it in channel groups keeps the
    // recomputing backward's temporaries a quarter of that size.
    if (strategy === 'recompute-grouped') return transitionOp(x, norm.training(), w, { channelGroups: 4 });
    return tf.tidy(() => transitionPool(tf.conv2d(naiveBnRelu(x, norm.training()) as tf.Tensor4D, w, 1, 'valid')));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), outputChannels: this.outputChannels };
  }
}
tf.serialization.registerClass(Transition);
