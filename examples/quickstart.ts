/**
 * The reference article's demo in TensorFlow.js: a DenseNet-121 with 4 classes on a batch of two 224×224
 * images of ones (NHWC). Run: npx tsx examples/quickstart.ts
 */
import * as tf from '@tensorflow/tfjs';
import { densenet121, initBackend } from 'efficient-densenet-tfjs';

export async function quickstart(): Promise<number[]> {
  const model = densenet121({ numClasses: 4 });
  const input = tf.ones([2, 224, 224, 3]);
  const logits = model.predict(input) as tf.Tensor;
  const shape = logits.shape;
  tf.dispose([input, logits]);
  model.dispose();
  return shape;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const backend = await initBackend();
  const shape = await quickstart();
  console.log(`densenet121({ numClasses: 4 }) on [2, 224, 224, 3] → logits of shape [${shape.join(', ')}] (backend: ${backend})`);
}
