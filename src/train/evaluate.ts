/** Loss and accuracy of a model over a dataset, in inference mode. */
import * as tf from '@tensorflow/tfjs';
import type * as tfd from '@tensorflow/tfjs-data';
import { countCorrect, perExampleCrossEntropy } from '../step/loss.js';
import type { TrainBatch } from './types.js';

/** Mean loss and accuracy over a dataset, in inference mode. */
export async function evaluate(model: tf.LayersModel, dataset: tfd.Dataset<TrainBatch>): Promise<{ loss: number; accuracy: number; images: number }> {
  let lossSum = 0;
  let correct = 0;
  let images = 0;
  const iterator = await dataset.iterator();
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    const { xs, ys } = next.value;
    try {
      const [sum, hits] = tf.tidy(() => {
        const logits = model.apply(xs, { training: false }) as tf.Tensor;
        return [tf.sum(perExampleCrossEntropy(ys, logits)), countCorrect(logits, ys)];
      });
      lossSum += (await sum.data())[0]!;
      correct += (await hits.data())[0]!;
      tf.dispose([sum, hits]);
      images += xs.shape[0]!;
    } finally {
      tf.dispose([xs, ys]);
    }
  }
  return images === 0 ? { loss: NaN, accuracy: NaN, images } : { loss: lossSum / images, accuracy: correct / images, images };
}
