/**
 * `efficient-densenet-tfjs/train`: trainDenseNet and its data helpers. Loads sharp (image decoding) and
 * vega (training curves), which the main entry never does.
 */
export { trainDenseNet, validateTrainOptions } from './train.js';
export { evaluate } from './evaluate.js';
export { TRAIN_DEFAULTS } from './options.js';
export {
  TrainingDivergedError,
  type TrainDenseNetOptions,
  type TrainResult,
  type TrainDatasets,
  type TrainBatch,
  type TrainCallbacks,
  type EpochMetrics,
  type BatchMetrics,
  type BestEpoch,
} from './types.js';
export { OPTIMIZER_NAMES, type OptimizerName } from '../step/optimizers.js';
export { WorkerFailedError } from '../parallel/pool.js';
export type { WorkersOption } from '../parallel/workers.js';
export { SCHEDULE_NAMES, type ScheduleName } from './schedule.js';
export { scanImageFolder, type ImageFolder, type Sample, type ScanImageFolderOptions } from '../data/image-folder.js';
export {
  imageFolderDataset,
  AUGMENTS,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type Augment,
  type ImageBatch,
  type ImageFolderDataset,
  type ImageFolderDatasetOptions,
} from '../data/dataset.js';
export { writeSyntheticImageFolder, type SyntheticImageFolderOptions, type SyntheticVariant, type SyntheticFormat } from '../data/synthetic.js';
export { evaluateImageFolder, type FolderEvaluation, type EvaluateImageFolderOptions } from './evaluate-folder.js';
export { perClassReport, type Evaluation, type ClassReport } from './evaluate.js';
export { SMALL_DATA_DEFAULTS, SMALL_DATA_IMAGES } from './recipe.js';
