/**
 * What the PyTorch reference fixtures describe, and one eval forward plus one training forward + backward of a
 * model with its gradients in torchvision's names and layouts, ready to compare against them. Shared by the
 * torchvision parity tests (against PyTorch float32) and the float64 ones.
 */
import * as tf from '@tensorflow/tfjs';
import { softmaxCrossEntropy } from '../../src/step/loss.js';
import { toTorchvisionLayout, torchvisionNames, type TorchvisionTensor } from '../../src/weights/torchvision-names.js';

/** torchvision's `DenseNet(...)` arguments as the fixture scripts record them. */
export interface TorchvisionArchitecture {
  growth_rate: number;
  block_config: number[];
  num_init_features: number;
  bn_size: number;
  drop_rate: number;
  num_classes: number;
}

export interface TorchvisionStep {
  evalLogits: Float32Array;
  trainLogits: Float32Array;
  loss: number;
  /** Every trainable variable's gradient, by torchvision name, in PyTorch layout. */
  grads: Map<string, TorchvisionTensor>;
}

/** Eval-mode logits, then a training forward + backward from the same state (softmax cross-entropy against `y`). */
export function torchvisionStep(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): TorchvisionStep {
  const evalLogits = tf.tidy(() => Float32Array.from((model.predict(x) as tf.Tensor).dataSync()));
  const torchName = new Map([...torchvisionNames(model)].map(([name, w]) => [(w.read() as tf.Variable).name, name]));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let trainLogits = new Float32Array();
  const { value, grads } = tf.variableGrads(() => {
    const out = model.apply(x, { training: true }) as tf.Tensor;
    trainLogits = Float32Array.from(out.dataSync());
    return softmaxCrossEntropy(y, out);
  }, vars);
  const loss = value.dataSync()[0]!;
  const byName = new Map<string, TorchvisionTensor>();
  for (const [variableName, grad] of Object.entries(grads)) {
    const name = torchName.get(variableName);
    if (!name) throw new Error(`gradient for unmapped variable ${variableName}`);
    byName.set(name, toTorchvisionLayout(model, name, grad));
  }
  tf.dispose([value, ...Object.values(grads)]);
  return { evalLogits, trainLogits, loss, grads: byName };
}
