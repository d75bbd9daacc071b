/**
 * The end of torchvision's `features` and the start of its `forward`: final BN (`norm5`) → ReLU → global
 * average pool, giving [batch, channels] for the linear classifier.
 */
import * as tf from '@tensorflow/tfjs';
import { inferenceBnRelu, naiveBnRelu } from '../norm/batch-norm.js';
import { headOp } from '../recompute/stage-ops.js';
import { MemoryModeLayer, singleInput, singleShape, type Kwargs, type LayerArgs, type MemoryModeArgs, type Shape } from './memory-mode-layer.js';
import { NormWeights } from './norm.js';

export class FinalNorm extends MemoryModeLayer {
  static className = 'DenseNetFinalNorm';
  private norm?: NormWeights;

  constructor(args: LayerArgs & MemoryModeArgs = {}) {
    super(args);
  }

  override build(inputShape: Shape | Shape[]): void {
    const channels = singleShape(inputShape)[3];
    if (typeof channels !== 'number') throw new Error(`FinalNorm '${this.name}': the input channel count must be known`);
    this.norm = NormWeights.add(this.weightAdder(), 'norm5', channels);
    this.built = true;
  }

  get parts(): { norm: NormWeights } {
    if (!this.norm) throw new Error(`FinalNorm '${this.name}' is not built yet`);
    return { norm: this.norm };
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = singleShape(inputShape);
    return [shape[0], shape[3]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = singleInput(inputs, `FinalNorm '${this.name}'`);
    const { norm } = this.parts;
    if (!MemoryModeLayer.isTraining(kwargs)) {
      return tf.tidy(() => tf.mean(inferenceBnRelu(x, norm.affine(), norm.runningMean(), norm.runningVariance()), [1, 2]));
    }
    if (this.strategy('head') === 'recompute') return headOp(x, norm.training());
    return tf.tidy(() => tf.mean(naiveBnRelu(x, norm.training()), [1, 2]));
  }
}
tf.serialization.registerClass(FinalNorm);
