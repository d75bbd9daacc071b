/** Loss, accuracy and confusion matrix of a model over a dataset, in inference mode. */
import * as tf from '@tensorflow/tfjs';
import type * as tfd from '@tensorflow/tfjs-data';
import { perExampleCrossEntropy } from '../step/loss.js';
import type { TrainBatch } from './types.js';

export interface Evaluation {
  loss: number;
  accuracy: number;
  images: number;
  /** confusion[true class][predicted class]: image counts. */
  confusion: number[][];
}

/** Mean loss, accuracy and the confusion matrix over a dataset of { xs, ys } batches, in inference mode. */
export async function evaluate(model: tf.LayersModel, dataset: tfd.Dataset<TrainBatch>): Promise<Evaluation> {
  let lossSum = 0;
  let images = 0;
  let confusion: number[][] = [];
  const iterator = await dataset.iterator();
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    const { xs, ys } = next.value;
    try {
      const classes = ys.shape[1]!;
      if (confusion.length === 0) confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
      const [sum, predicted, truth] = tf.tidy(() => {
        const logits = model.apply(xs, { training: false }) as tf.Tensor;
        return [tf.sum(perExampleCrossEntropy(ys, logits)), tf.argMax(logits, -1), tf.argMax(ys, -1)];
      });
      lossSum += (await sum.data())[0]!;
      const [p, t] = [await predicted.data(), await truth.data()];
      tf.dispose([sum, predicted, truth]);
      for (let i = 0; i < p.length; i++) confusion[t[i]!]![p[i]!]!++;
      images += xs.shape[0]!;
    } finally {
      tf.dispose([xs, ys]);
    }
  }
  const correct = confusion.reduce((sum, row, i) => sum + row[i]!, 0);
  return images === 0 ? { loss: NaN, accuracy: NaN, images, confusion } : { loss: lossSum / images, accuracy: correct / images, images, confusion };
}

export interface ClassReport {
  name: string;
  /** Images of this class. */
  support: number;
  /** Of the images predicted as this class, the fraction that are; null when none was predicted. */
  precision: number | null;
  /** Of this class's images, the fraction predicted as it; null without images. */
  recall: number | null;
}

/** Per-class precision and recall from a confusion matrix (rows: true class, columns: predicted). */
export function perClassReport(confusion: number[][], classNames: string[]): ClassReport[] {
  return classNames.map((name, k) => {
    const support = confusion[k]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((sum, row) => sum + row[k]!, 0);
    const hits = confusion[k]![k]!;
    return { name, support, precision: predicted > 0 ? hits / predicted : null, recall: support > 0 ? hits / support : null };
  });
}
