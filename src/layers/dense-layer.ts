/**
 * One dense layer of the DenseNet paper: BN → ReLU → 1×1 conv (bnSize·k channels) → BN → ReLU → 3×3 conv
 * (k channels) over the concatenation of every earlier feature map; torchvision's `_DenseLayer`.
 */
import * as tf from '@tensorflow/tfjs';
import { inferenceBnRelu, naiveBnRelu } from '../norm/batch-norm.js';
import { bottleneckOp, conv1x1, denseLayerOp, type DenseLayerParams } from '../recompute/dense-ops.js';
import { dropoutMask, type DropoutSpec } from '../ops/dropout.js';
import { integer } from '../util/validate.js';
import { validateDropRate } from './config.js';
import { kaimingNormal, seedFor } from './initializers.js';
import { MemoryModeLayer, type Kwargs, type LayerArgs, type MemoryModeArgs, type Shape } from './memory-mode-layer.js';
import { NormWeights, type LayerVariable } from './norm.js';

export interface DenseLayerArgs extends LayerArgs, MemoryModeArgs {
  /** Feature maps this layer adds (k, the growth rate). */
  growthRate: number;
  /** Bottleneck width multiplier: the 1×1 conv outputs bnSize·growthRate channels (default 4). */
  bnSize?: number;
  /** Dropout rate on the new features during training (default 0). */
  dropRate?: number;
  /**
   * Set by an owning DenseBlock: the weights are then named `<layer name>/...` inside the block's scope,
   * so that every layer of a block has distinct weight names.
   */
  nested?: boolean;
}

export class DenseLayer extends MemoryModeLayer {
  static className = 'DenseLayer';
  readonly growthRate: number;
  readonly bnSize: number;
  readonly dropRate: number;
  private readonly nested: boolean;
  /** Names this layer's dropout masks (see ops/dropout.ts); an owning DenseBlock prefixes its own name. */
  dropoutKey: string;
  private norm1?: NormWeights;
  private kernel1?: LayerVariable;
  private norm2?: NormWeights;
  private kernel2?: LayerVariable;

  constructor(args: DenseLayerArgs) {
    super(args);
    this.growthRate = integer('DenseLayer: growthRate', args.growthRate ?? NaN) as number;
    this.bnSize = integer('DenseLayer: bnSize', args.bnSize ?? 4) as number;
    this.dropRate = validateDropRate(args.dropRate ?? 0, 'DenseLayer: dropRate');
    this.nested = args.nested ?? false;
    this.dropoutKey = this.name;
  }

  /** The dropout this layer applies in training, the same in every memory mode; undefined at rate 0. */
  get dropout(): DropoutSpec | undefined {
    return this.dropRate > 0 ? { rate: this.dropRate, key: this.dropoutKey } : undefined;
  }

  /** Channels of the 1×1 bottleneck output. */
  get bottleneckChannels(): number {
    return this.bnSize * this.growthRate;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as Shape[];
    const channels = shapes.reduce((sum, shape) => sum + (shape[shape.length - 1] ?? NaN), 0);
    if (!Number.isInteger(channels)) {
      throw new Error(`DenseLayer '${this.name}': the channel count of every input must be known, got shapes ${JSON.stringify(shapes)}`);
    }
    this.buildForChannels(channels);
  }

  /** Creates the weights for an input of `channels` feature maps (used directly by DenseBlock). */
  buildForChannels(channels: number): void {
    const add = this.weightAdder(this.nested ? `${this.name}/` : '');
    const width = this.bottleneckChannels;
    const shape1 = [1, 1, channels, width];
    const shape2 = [3, 3, width, this.growthRate];
    this.norm1 = NormWeights.add(add, 'norm1', channels);
    this.kernel1 = add('conv1/kernel', shape1, kaimingNormal(shape1, seedFor(this.seed, 1)), true);
    this.norm2 = NormWeights.add(add, 'norm2', width);
    this.kernel2 = add('conv2/kernel', shape2, kaimingNormal(shape2, seedFor(this.seed, 2)), true);
    this.built = true;
  }

  /** The layer's weight groups, for DenseBlock and the torchvision name mapping. */
  get parts(): { norm1: NormWeights; kernel1: LayerVariable; norm2: NormWeights; kernel2: LayerVariable } {
    if (!this.norm1 || !this.kernel1 || !this.norm2 || !this.kernel2) {
      throw new Error(`DenseLayer '${this.name}' is not built yet`);
    }
    return { norm1: this.norm1, kernel1: this.kernel1, norm2: this.norm2, kernel2: this.kernel2 };
  }

  /** Weight values for a training forward (BN recorders update the running statistics). */
  trainingParams(): DenseLayerParams {
    const { norm1, kernel1, norm2, kernel2 } = this.parts;
    return {
      norm1: norm1.training(),
      kernel1: kernel1.read() as tf.Tensor4D,
      norm2: norm2.training(),
      kernel2: kernel2.read() as tf.Tensor4D,
    };
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    return [...first.slice(0, -1), this.growthRate];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const features = (Array.isArray(inputs) ? inputs : [inputs]) as tf.Tensor4D[];
    return this.newFeatures(features, MemoryModeLayer.isTraining(kwargs));
  }

  /** The layer's new feature maps from the list of earlier ones. */
  newFeatures(features: tf.Tensor4D[], training: boolean): tf.Tensor4D {
    if (!training) return this.inferenceForward(features);
    const dropout = this.dropout;
    switch (this.strategy('denseLayer')) {
      case 'recompute-all':
        return denseLayerOp(features, this.trainingParams(), dropout);
      case 'recompute-bottleneck': {
        const params = this.trainingParams();
        const bottleneck = bottleneckOp(features, params.norm1, params.kernel1);
        const out = this.secondHalf(bottleneck, params);
        bottleneck.dispose();
        return out;
      }
      case 'stored':
        return tf.tidy(() => {
          const params = this.trainingParams();
          const x = features.length === 1 ? features[0] : tf.concat(features, 3);
          const bottleneck = tf.conv2d(naiveBnRelu(x, params.norm1) as tf.Tensor4D, params.kernel1, 1, 'valid');
          return this.secondHalf(bottleneck, params);
        });
    }
  }

  /** BN2 → ReLU → 3×3 conv → dropout through tfjs's differentiable ops (stored for backprop). */
  private secondHalf(bottleneck: tf.Tensor4D, params: DenseLayerParams): tf.Tensor4D {
    return tf.tidy(() => {
      const out = tf.conv2d(naiveBnRelu(bottleneck, params.norm2) as tf.Tensor4D, params.kernel2, 1, 'same');
      const dropout = this.dropout;
      if (!dropout) return out;
      return tf.mul(out, dropoutMask(out.shape, dropout)) as tf.Tensor4D;
    });
  }

  private inferenceForward(features: tf.Tensor4D[]): tf.Tensor4D {
    const { norm1, kernel1, norm2, kernel2 } = this.parts;
    return tf.tidy(() => {
      const x = features.length === 1 ? features[0] : tf.concat(features, 3);
      const a1 = inferenceBnRelu(x, norm1.affine(), norm1.runningMean(), norm1.runningVariance()) as tf.Tensor4D;
      const z = conv1x1(a1, kernel1.read() as tf.Tensor4D);
      const a2 = inferenceBnRelu(z, norm2.affine(), norm2.runningMean(), norm2.runningVariance()) as tf.Tensor4D;
      return tf.conv2d(a2, kernel2.read() as tf.Tensor4D, 1, 'same');
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), growthRate: this.growthRate, bnSize: this.bnSize, dropRate: this.dropRate, nested: this.nested };
  }
}
tf.serialization.registerClass(DenseLayer);
