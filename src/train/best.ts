/**
 * The best epoch's weights, kept so that trainDenseNet returns the model of its best epoch (as outDir's
 * model.json), not merely the last one.
 */
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler } from '../io/file-system.js';

export class BestWeights {
  private values: tf.Tensor[] | null = null;

  /** Copies the model's weights (running statistics included), replacing an earlier copy. */
  async keep(model: tf.LayersModel): Promise<void> {
    this.dispose();
    // Byte copies, not clones: a clone shares its data with the variable, and backends may update in place.
    // Read asynchronously: webgpu cannot read a GPU buffer synchronously in Node (no OffscreenCanvas).
    const weights = model.getWeights();
    this.values = await Promise.all(weights.map(async (w) => tf.tensor((await w.data()).slice(), w.shape, w.dtype)));
  }

  /**
   * Puts the best epoch's weights into `model`: the copy kept in this process, else (a resumed run whose
   * best epoch came before the resume) outDir's model.json. Does nothing when the last epoch was the best.
   */
  async restore(model: tf.LayersModel, bestEpoch: number, lastEpoch: number, outDir: string | undefined): Promise<void> {
    if (bestEpoch === lastEpoch) return;
    if (this.values !== null) {
      model.setWeights(this.values);
    } else if (outDir !== undefined) {
      const saved = await tf.loadLayersModel(fileSystemHandler(outDir));
      try {
        model.setWeights(saved.getWeights());
      } finally {
        saved.dispose();
      }
    }
  }

  dispose(): void {
    if (this.values !== null) tf.dispose(this.values);
    this.values = null;
  }
}
