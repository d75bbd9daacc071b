/**
 * A BatchNorm's four variables inside one of our layers, with PyTorch's semantics: γ=1, β=0 at init,
 * running statistics updated once per training forward with momentum 0.1 and the unbiased batch variance.
 */
import * as tf from '@tensorflow/tfjs';
import type { Initializer } from './initializers.js';
import { BN_MOMENTUM, type NormAffine, type TrainingNorm } from '../norm/batch-norm.js';

export type LayerVariable = tf.LayerVariable;

/** The signature of a layer's (protected) `addWeight`, handed over by the layer that owns the weights. */
export type AddWeight = (
  name: string,
  shape: number[],
  initializer: Initializer,
  trainable: boolean,
) => LayerVariable;

export class NormWeights {
  private constructor(
    readonly gamma: LayerVariable,
    readonly beta: LayerVariable,
    readonly movingMean: LayerVariable,
    readonly movingVariance: LayerVariable,
  ) {}

  /** Adds `<prefix>/gamma`, `/beta`, `/moving_mean`, `/moving_variance` for `channels` channels. */
  static add(addWeight: AddWeight, prefix: string, channels: number): NormWeights {
    return new NormWeights(
      addWeight(`${prefix}/gamma`, [channels], tf.initializers.ones(), true),
      addWeight(`${prefix}/beta`, [channels], tf.initializers.zeros(), true),
      addWeight(`${prefix}/moving_mean`, [channels], tf.initializers.zeros(), false),
      addWeight(`${prefix}/moving_variance`, [channels], tf.initializers.ones(), false),
    );
  }

  affine(): NormAffine {
    return { gamma: this.gamma.read() as tf.Tensor1D, beta: this.beta.read() as tf.Tensor1D };
  }

  /** γ and β for a training forward, with a recorder that updates the running statistics. */
  training(): TrainingNorm {
    return { ...this.affine(), record: (mean, variance, count) => this.updateRunning(mean, variance, count) };
  }

  private updateRunning(mean: tf.Tensor1D, variance: tf.Tensor1D, count: number): void {
    if (count < 2) {
      throw new Error(
        `BatchNorm '${this.gamma.originalName}' got 1 value per channel in training mode (batch 1 at 1×1 spatial size); ` +
          'use a larger batch or larger images',
      );
    }
    tf.tidy(() => {
      const keep = 1 - BN_MOMENTUM;
      const unbiased = tf.mul(variance, count / (count - 1));
      this.movingMean.write(tf.add(tf.mul(this.movingMean.read(), keep), tf.mul(mean, BN_MOMENTUM)));
      this.movingVariance.write(tf.add(tf.mul(this.movingVariance.read(), keep), tf.mul(unbiased, BN_MOMENTUM)));
    });
  }

  runningMean(): tf.Tensor1D {
    return this.movingMean.read() as tf.Tensor1D;
  }

  runningVariance(): tf.Tensor1D {
    return this.movingVariance.read() as tf.Tensor1D;
  }
}
