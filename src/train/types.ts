/** The public face of trainDenseNet: its options, what it reports while running, and what it returns. */
import type * as tf from '@tensorflow/tfjs';
import type * as tfd from '@tensorflow/tfjs-data';
import type { DenseNetVariant } from '../layers/config.js';
import type { MemoryMode } from '../layers/memory-modes.js';
import type { CreateDenseNetOptions } from '../layers/densenet.js';
import type { Logger } from '../util/logger.js';
import type { Augment } from '../data/dataset.js';
import type { OptimizerName } from '../step/optimizers.js';
import type { ScheduleName } from './schedule.js';

/** A batch of a user-supplied dataset: NHWC float32 images (already normalised) and one-hot labels. */
export type TrainBatch = { xs: tf.Tensor; ys: tf.Tensor };

/** Datasets given directly instead of a folder. Each pass over `train` is one epoch; batches are disposed after use. */
export interface TrainDatasets {
  train: tfd.Dataset<TrainBatch>;
  val?: tfd.Dataset<TrainBatch>;
}

export interface BatchMetrics {
  /** 1-based. */
  epoch: number;
  /** 1-based batch within the epoch. */
  batch: number;
  /** Batches per epoch, null when unknown (user datasets). */
  batches: number | null;
  /** This batch's loss and accuracy. */
  loss: number;
  accuracy: number;
  /** Running means over the epoch so far. */
  epochLoss: number;
  epochAccuracy: number;
  lr: number;
  imagesPerSecond: number;
}

export interface EpochMetrics {
  /** 1-based. */
  epoch: number;
  /** Learning rate at the epoch's first step. */
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  /** Null without validation data. */
  valLoss: number | null;
  valAccuracy: number | null;
  trainImages: number;
  /** Wall-clock seconds of the epoch: training, validation and snapshot. */
  seconds: number;
  /** Training images per second (training steps only). */
  imagesPerSecond: number;
}

export interface BestEpoch {
  epoch: number;
  valAccuracy: number | null;
  valLoss: number | null;
  /** The best epoch's validation confusion matrix: confusion[true][predicted] counts. Absent without validation. */
  confusion?: number[][];
}

export interface TrainCallbacks {
  onBatchEnd?: (metrics: BatchMetrics) => void | Promise<void>;
  onEpochEnd?: (metrics: EpochMetrics) => void | Promise<void>;
}

export interface TrainDenseNetOptions {
  /**
   * What to train: a torchvision variant name (default 'densenet121'), a configuration for createDenseNet
   * (its `seed` and `numClasses` are set from these options), or a built tf.LayersModel whose last layer is
   * the Dense classifier (replaced by a fresh one when its width differs from numClasses).
   */
  model?: DenseNetVariant | CreateDenseNetOptions | tf.LayersModel;
  /** Default: the number of class folders, or the width of the datasets' one-hot labels. */
  numClasses?: number;
  /**
   * What backprop keeps and recomputes: 'naive' | 'bottleneck' | 'layer' | 'block' (README, memory modes),
   * or 'auto' with a memoryBudget. Default: 'layer' on backends that recompute by default (wasm, where it
   * trains as fast as naive with a tenth of its memory: DenseNet-121, 112², batch 8, 1,744 vs 2,057 ms/step
   * on 2 cores), 'naive' elsewhere (torchvision's default). A given LayersModel or pretrained tfjs model
   * keeps its own mode unless this is set. All modes compute the same numbers.
   */
  memoryMode?: MemoryMode | 'auto';
  /** Alias of memoryMode: true → 'layer' (or `recompute`), false → 'naive'. */
  memoryEfficient?: boolean;
  /** Alias: the mode `memoryEfficient: true` selects. */
  recompute?: MemoryMode;
  /**
   * A memory budget for the whole training step (weights, optimizer state, batch and the step's peak), in
   * bytes or as '4GiB' / '512MiB': planMemory then chooses a memory mode per dense block that fits it with the
   * least predicted time (exact bytes from the meta backend), and logs the plan. Excludes memoryMode (but
   * 'auto'); a budget nothing fits is an error naming the smallest that would.
   */
  memoryBudget?: number | string;
  /**
   * An image folder (`ROOT/train/<class>/*` + `ROOT/val/<class>/*`, or `ROOT/<class>/*` split by valSplit),
   * or datasets of { xs, ys } batches. On resume the folder of the snapshot is the default.
   */
  data?: string | TrainDatasets;
  /** Validation fraction per class for an unsplit folder. Default 0.2. */
  valSplit?: number;
  /** Class names for datasets (folders name their classes). Default '0', '1', … */
  classNames?: string[];
  /**
   * Side of the square input, ≥ 32. Default 64 for folders: small folders are usually small images, and a
   * DenseNet-121 step at 64² is ~12× cheaper than at 224². Datasets default to their images' size.
   */
  imageSize?: number;
  /** Default 32. */
  batchSize?: number;
  /** Default 10. */
  epochs?: number;
  /**
   * Default 'adam' (lr 1e-3, no weight decay, cosine schedule): it fits a small folder within a few epochs
   * from scratch or from pretrained weights. 'sgd' is the DenseNet paper's recipe: Nesterov momentum 0.9,
   * weight decay 1e-4, lr 0.1 divided by 10 at 50% and 75% of the epochs — made for ImageNet/CIFAR over
   * hundreds of epochs, and too slow to settle in the few epochs a small folder gets.
   */
  optimizer?: OptimizerName;
  /** Base learning rate. Default 0.1 for 'sgd', 1e-3 for 'adam'. */
  lr?: number;
  /**
   * Coupled L2 weight decay on every parameter (PyTorch semantics). Default 1e-4 for 'sgd', 0 for 'adam';
   * 5e-4 for 'sgd' in the small-data recipe (a folder of fewer than 2,000 training images); Adam keeps 0,
   * because coupled L2 through Adam's normalisation pulls weights with small gradients to zero at full speed.
   */
  weightDecay?: number;
  /**
   * Label smoothing ε of the cross-entropy (PyTorch's `label_smoothing`): targets (1 − ε)·onehot + ε/K.
   * Default 0 (also in the small-data recipe, where it slowed learning).
   */
  labelSmoothing?: number;
  /** SGD (Nesterov) momentum. Default 0.9. */
  momentum?: number;
  /** Default 'step' for 'sgd', 'cosine' for 'adam'. */
  schedule?: ScheduleName;
  /**
   * Training augmentation for folders (see Augment). The small-data recipe (a folder of fewer than 2,000
   * training images, src/train/recipe.ts) defaults to 'crop' with `flip` and `jpegQuality` [40, 95]; a larger folder or datasets to 'none'. The start of the run logs every setting, defaults marked.
   */
  augment?: Augment;
  /** Zero padding of 'crop' in pixels. Default imageSize / 8 (4 at 32²). */
  cropPadding?: number;
  /**
   * Mirror half of the images in 'flip', 'crop' and 'resized-crop'. Default true. Set false when mirroring
   * changes the class: a 'b' becomes a 'd', a diagonal stripe an antidiagonal one.
   */
  flip?: boolean;
  /** Colour jitter strength s: brightness, contrast and saturation factors in [1 − s, 1 + s]. Default 0 (an option; measured slower on small folders). */
  photometric?: number;
  /** Re-encode half of the training images as JPEG at a quality in [min, max]; null is off. Default [40, 95] small-data, else null. */
  jpegQuality?: [number, number] | null;
  /**
   * Same seed ⇒ same run: weight initialisation, the folder's train/val split, the data order and the
   * augmentation all derive from it. Default: a random seed, reported in the result and the snapshot.
   * Dropout masks (a configuration with dropRate > 0) derive from (seed, epoch, batch, layer, sample), the
   * same in every memory mode, so such a run repeats and resumes exactly too.
   */
  seed?: number;
  /**
   * Weights to start from: a torchvision state_dict — a safetensors file or a PyTorch checkpoint such as
   * torchvision's own `densenet121-a639ec97.pth` (told by content; its classifier is skipped when its width
   * differs from numClasses) — or a folder holding a saved tfjs model (`model.json`), e.g. a previous outDir.
   */
  pretrained?: string;
  /**
   * Check the SHA-256 prefix a pretrained file's name carries (`densenet121-a639ec97.pth`) against its
   * bytes (default true); a mismatch stops the run before it starts.
   */
  checkHash?: boolean;
  /** Train only the classifier; the features run in inference mode (frozen BatchNorm statistics too). */
  freezeFeatures?: boolean;
  /**
   * Unfreeze the features after this many epochs (implies freezeFeatures for those epochs): the classifier
   * settles on fixed features first, then everything is fine-tuned. Default: frozen throughout when
   * freezeFeatures is set.
   */
  unfreezeAfter?: number;
  /**
   * The features' learning rate as a fraction of the classifier's (PyTorch param groups): pretrained
   * features need smaller steps than a new classifier. Default 0.1 with `pretrained`, 1 without.
   */
  featuresLrScale?: number;
  /**
   * Where the run is kept: per-epoch snapshot (`snapshot.json` + `snapshots/`), the best model by
   * validation accuracy (`model.json` + `weights.bin`), `classes.json`, `history.json`, `metrics.csv`,
   * `loss.svg`, `accuracy.svg`. Every file is written atomically.
   */
  outDir?: string;
  /** Continue from outDir's last snapshot (starts afresh when there is none). Same seed ⇒ same result as uninterrupted. */
  resume?: boolean;
  /** Replace the training output already in outDir instead of refusing to start. */
  overwrite?: boolean;
  callbacks?: TrainCallbacks;
  /**
   * Data-parallel training on this many worker threads, each with its own tfjs and a replica of the model
   * (wasm and cpu backends): every batch is split into shards (uneven where it does not divide), batch norm
   * is synchronized across them and the gradients are summed in a fixed order, so the run computes the same
   * function as one process (equal to float32 rounding) and repeats bit-exactly with the same worker count.
   * 'auto': a rule (parallel/workers.ts autoWorkers): on wasm and cpu one per core and at most one per image,
   * each shard at least MIN_PIXELS_PER_WORKER pixels (else 1: a tiny batch's synchronization costs more than a
   * core gives), fewer where their memory does not fit; 1 elsewhere; the log says what it chose and why.
   * Default 1 (this thread). A memoryBudget is shared
   * between the workers. Before any worker starts: a count above the batch size is capped to it (one log
   * line), one above the machine's cores refused (see allowOversubscribe), and a run whose workers' memory
   * does not fit the free memory (or the wasm heap) refused with the figures and the largest count that fits.
   */
  workers?: number | 'auto';
  /** Start more workers than the machine has cores (refused by default: they only add memory and waiting). */
  allowOversubscribe?: boolean;
  /**
   * With workers above 1. Default true: batch norm is synchronized, so the run trains the function of one
   * process. false: PyTorch DistributedDataParallel's default (no SyncBatchNorm) — each worker normalises with
   * its own shard's batch statistics, its loss is its shard's mean, the gradients are averaged over the
   * workers, and the running statistics are rank 0's (broadcast_buffers=True): a different function, which
   * depends on the worker count (the shard size is the batch-norm batch), with two barriers per step instead
   * of two per batch norm. Not stored in snapshots: give it again when resuming.
   */
  syncBatchNorm?: boolean;
  /** Progress bars on stderr (only when it is a terminal). Default false. */
  progress?: boolean;
  logger?: Logger;
}

export interface TrainResult {
  /**
   * The model with the best epoch's weights (highest validation accuracy, see `best`), as outDir's
   * model.json; the last epoch's weights are in outDir's snapshot.
   */
  model: tf.LayersModel;
  history: EpochMetrics[];
  best: BestEpoch;
  classNames: string[];
  seed: number;
}

/** Thrown when the loss stops being finite; the last snapshot written before it is kept. */
export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}
