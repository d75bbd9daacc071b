/**
 * One training step of a classifier that outputs logits: training-mode forward, softmax cross-entropy,
 * backward, optimizer update — below both `trainDenseNet` and the benchmarks, so both run the same step.
 */
import * as tf from '@tensorflow/tfjs';
import { softmaxCrossEntropy } from './loss.js';

/** The trainable variables of a model or layer (only those: the engine's global list includes other models'). */
export function trainableVariables(owner: { trainableWeights: tf.LayerVariable[] }): tf.Variable[] {
  return owner.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/**
 * Runs one step with a plain tfjs optimizer and returns the loss (the caller owns it).
 */
export function trainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  xs: tf.Tensor,
  ys: tf.Tensor,
  variables: tf.Variable[] = trainableVariables(model),
): tf.Scalar {
  const loss = optimizer.minimize(() => softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor), true, variables);
  if (!loss) throw new Error('optimizer.minimize returned no loss');
  return loss;
}
