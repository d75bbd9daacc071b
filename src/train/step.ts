/**
 * One training step of a classifier that outputs logits: training-mode forward, softmax cross-entropy,
 * backward, optimizer update — shared by `trainDenseNet` and the benchmarks so both measure the same thing.
 */
import * as tf from '@tensorflow/tfjs';

/** Mean softmax cross-entropy of logits against one-hot labels (PyTorch's `F.cross_entropy`). */
export function softmaxCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), -1))) as tf.Scalar);
}

/** The trainable variables of a model (only those: the engine's global list includes other models'). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/**
 * Runs one step and returns the loss (the caller owns it). `extraLoss` adds a regulariser built from the
 * model's variables (e.g. coupled weight decay) inside the differentiated function.
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
