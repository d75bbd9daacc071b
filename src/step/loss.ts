/**
 * The classification loss and accuracy of a logits model, in one place for training, evaluation and the
 * benchmarks: PyTorch's `F.cross_entropy` (mean over the batch) against one-hot labels.
 */
import * as tf from '@tensorflow/tfjs';

/** −Σ labels·log softmax(logits) per example: shape [batch]. */
export function perExampleCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), -1)) as tf.Tensor1D);
}

/** Mean softmax cross-entropy of logits against one-hot labels (PyTorch's `F.cross_entropy`). */
export function softmaxCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(perExampleCrossEntropy(labels, logits)) as tf.Scalar);
}

/** How many examples are classified correctly (argmax of logits = argmax of labels), as a float scalar. */
export function countCorrect(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(labels, -1)), 'float32')) as tf.Scalar);
}
