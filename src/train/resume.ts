/**
 * A run's state across processes: each epoch's snapshot (weights, optimizer state, the trainer's record) is
 * written after the epoch, and a resumed run takes all three back before its first step, so that it ends
 * with the same weights as an uninterrupted run.
 */
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler } from '../io/file-system.js';
import { UsageError } from '../util/errors.js';
import type { TrainingOptimizer } from '../step/optimizers.js';
import type { RunState } from './settings.js';
import { writeSnapshot, type LoadedSnapshot } from './snapshots.js';

/** Copies a snapshot's weights (running statistics included) and optimizer state into the run's own. */
export async function restoreRun(snapshot: LoadedSnapshot<RunState>, model: tf.LayersModel, optimizer: TrainingOptimizer): Promise<void> {
  const saved = await tf.loadLayersModel(fileSystemHandler(snapshot.modelDir));
  try {
    const ours = model.weights;
    const theirs = saved.weights;
    const mismatch = ours.length !== theirs.length || ours.some((w, i) => w.shape.join('x') !== theirs[i]!.shape.join('x'));
    if (mismatch) {
      throw new UsageError(`cannot resume: the snapshot in ${snapshot.modelDir} holds a different architecture than the model being trained`);
    }
    model.setWeights(saved.getWeights());
  } finally {
    saved.dispose();
  }
  const state = await snapshot.readOptimizerState();
  try {
    await optimizer.setState(state);
  } finally {
    tf.dispose(state.map((s) => s.tensor));
  }
}

/** Writes the snapshot of a finished epoch (the optimizer's state is read out and freed here). */
export async function snapshotRun(outDir: string, epoch: number, model: tf.LayersModel, optimizer: TrainingOptimizer, state: RunState): Promise<void> {
  const optimizerState = await optimizer.getState();
  try {
    await writeSnapshot(outDir, epoch, model, optimizerState, state);
  } finally {
    tf.dispose(optimizerState.map((s) => s.tensor));
  }
}
