/**
 * `trainDenseNet`: trains or fine-tunes a DenseNet on an image folder (or tfjs-data datasets), with
 * validation, per-epoch snapshots that a killed run resumes from bit-exactly, and the usual outputs
 * (history, metrics CSV, curves, class names, best model) in an output folder.
 */
import * as tf from '@tensorflow/tfjs';
import { explainOutOfMemory, type OutOfMemoryContext } from '../memory/out-of-memory-advice.js';
import { applyMemoryBudget } from '../memory/plan.js';
import { fileSystemHandler } from '../io/file-system.js';
import { UsageError } from '../util/errors.js';
import { stderrLogger, type Logger } from '../util/logger.js';
import { formatSize } from '../util/format.js';
import { BestWeights } from './best.js';
import { epochSeed, prepareData, type DataSource } from './data-source.js';
import { evaluate } from './evaluate.js';
import { writeClassNames } from '../data/class-names.js';
import { localSteps, poolSteps, trainEpoch } from './loop.js';
import { WorkerPool } from '../parallel/pool.js';
import { autoWorkers, resolveWorkers, type AutoWorkers } from '../parallel/workers.js';
import { admitWorkerCount, checkWorkerMemory, machine } from '../parallel/admission.js';
import { buildModel, defaultMemoryMode } from './model-setup.js';
import { classifierIndices, paramGroups } from '../step/step.js';
import { checkOptions, type Checked, type RunSettings } from './options.js';
import { TrainingOptimizer, type OptimizerSettings } from '../step/optimizers.js';
import { createTrainingProgress } from './progress.js';
import { applyRecipe, defaultedKeys, logSettings } from './recipe.js';
import { formatEpoch, isBetter, writeReports } from './reports.js';
import { checkOutDir, checkPretrained, resolveSettings, type RunState } from './settings.js';
import { restoreRun, snapshotRun } from './resume.js';
import { clearSnapshots, readSnapshot, type LoadedSnapshot } from './snapshots.js';
import type { BestEpoch, EpochMetrics, TrainDenseNetOptions, TrainResult } from './types.js';

/** The optimizer whose state a memory measurement counts: training's own. */
function optimizerOf(settings: RunSettings): OptimizerSettings {
  const { lr, momentum, weightDecay } = settings;
  return { name: settings.optimizer, lr, momentum, weightDecay };
}

/**
 * Sets each dense block's memory mode so that the whole step fits settings.memoryBudget (planMemory). With
 * workers, each holds a replica and the largest shard, within an equal share of the budget.
 */
async function planToBudget(model: tf.LayersModel, settings: RunSettings, workers: number, logger: Logger): Promise<void> {
  const { imageSize, numClasses } = settings;
  // The plan counts the optimizer's state in the whole step: training's own optimizer.
  const optimizer = optimizerOf(settings);
  const batchSize = Math.ceil(settings.batchSize / workers);
  const budget = Math.floor(settings.memoryBudget! / workers);
  const shared = `memoryBudget ${formatSize(settings.memoryBudget!)} shared by ${workers} workers, each a replica and ${batchSize} images within ${formatSize(budget)}`;
  if (workers > 1) logger.info(shared);
  try {
    await applyMemoryBudget(model, { batchSize, imageSize, numClasses, budget, optimizer, logger });
  } catch (error) {
    // planMemory names the share it was given; the caller gave the whole.
    throw workers > 1 && error instanceof UsageError ? new UsageError(`${shared}: ${error.message}`) : error;
  }
}

/** Runs `fn`, turning an out-of-memory failure into explainOutOfMemory's message. */
async function explainingOom<T>(fn: () => Promise<T>, context: Omit<OutOfMemoryContext, 'backend'>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw explainOutOfMemory(error, { backend: tf.getBackend(), ...context });
  }
}

interface Prepared {
  checked: Checked;
  snapshot: LoadedSnapshot<RunState> | null;
  settings: RunSettings;
  data: DataSource;
}

/** Everything that can fail on the caller's input, before a tensor is allocated or a file written. */
async function prepare(options: TrainDenseNetOptions): Promise<Prepared> {
  const checked = checkOptions(options);
  await checkOutDir(checked);
  const logger = checked.logger;
  const snapshot = checked.resume ? await readSnapshot<RunState>(checked.outDir!) : null;
  if (checked.resume && !snapshot) logger.info(`no snapshot in ${checked.outDir}; starting a new run there`);
  const settings = resolveSettings(checked, snapshot?.state.settings, logger);
  if (settings.pretrained !== null) await checkPretrained(settings.pretrained);
  const data = await prepareData(checked, settings, logger);
  if (snapshot) {
    const stored = snapshot.state.classNames;
    if (JSON.stringify(stored) !== JSON.stringify(data.classNames)) {
      throw new UsageError(`cannot resume: the snapshot's classes (${stored.join(', ')}) differ from the data's (${data.classNames.join(', ')})`);
    }
  }
  settings.numClasses = data.numClasses;
  settings.imageSize = data.imageSize;
  if (!snapshot) applyRecipe(settings, checked.given, data.trainImages);
  // A count refused on this machine is refused before the backend loads ('auto' is one per core at most).
  if (typeof checked.workers === 'number') admitWorkerCount({ workers: checked.workers, batchSize: settings.batchSize, allowOversubscribe: checked.allowOversubscribe });
  return { checked, snapshot, settings, data };
}

/**
 * workers 'auto' after the memory check: the rule's count, or fewer where the workers' memory does not fit
 * (admission.ts); one log line says what was chosen and why.
 */
async function autoWorkersThatFit(model: tf.LayersModel, settings: RunSettings, auto: AutoWorkers, logger: Logger): Promise<number> {
  const { imageSize, numClasses, batchSize } = settings;
  let note = '';
  for (let n = auto.workers; n >= 2; n--) {
    try {
      await checkWorkerMemory({ model, workers: n, batchSize, imageSize, numClasses, optimizer: optimizerOf(settings) });
      logger.info(`workers auto: ${n} (${auto.reason}${note})`);
      return n;
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      note = `; ${n} workers' memory does not fit: ${error.message}`;
    }
  }
  logger.info(`workers auto: 1 (${auto.reason}${note})`);
  return 1;
}

/**
 * Runs every check trainDenseNet makes before it starts (options, data folder, outDir, snapshot, pretrained
 * file) and throws the same UsageError it would; writes and allocates nothing. Lets a caller fail fast
 * before slower set-up such as picking a backend.
 */
export async function validateTrainOptions(options: TrainDenseNetOptions): Promise<void> {
  await prepare(options);
}

/**
 * Trains (or fine-tunes) a DenseNet classifier on the current backend (pick it first with initBackend).
 * Every option is checked, the data folder scanned and the output folder inspected before any tensor is
 * allocated or any file written: a failed start changes nothing on disk.
 */
export async function trainDenseNet(options: TrainDenseNetOptions): Promise<TrainResult> {
  const { checked, snapshot, settings, data } = await prepare(options);
  const baseLogger = checked.logger;
  await tf.ready();
  const memoryMode = checked.memoryMode ?? defaultMemoryMode();
  const oomContext = { model: settings.model.startsWith('config:') ? 'a DenseNet' : settings.model, batchSize: settings.batchSize, memoryMode };
  const auto = checked.workers === 'auto' ? autoWorkers({ backend: tf.getBackend(), cores: machine.cores(), batchSize: settings.batchSize, imageSize: settings.imageSize }) : null;
  let workers = auto
    ? auto.workers
    : admitWorkerCount({ workers: resolveWorkers(checked.workers, tf.getBackend()), batchSize: settings.batchSize, allowOversubscribe: checked.allowOversubscribe, logger: baseLogger });
  const model = await explainingOom(() => buildModel(checked, settings, data, baseLogger, snapshot), oomContext);
  if (settings.memoryBudget !== null) await planToBudget(model, settings, workers, baseLogger);
  const optimizer = new TrainingOptimizer({
    name: settings.optimizer,
    lr: settings.lr,
    weightDecay: settings.weightDecay,
    momentum: settings.momentum,
    featuresLrScale: settings.featuresLrScale,
  });
  const bestWeights = new BestWeights();
  let history: EpochMetrics[] = snapshot?.state.history ?? [];
  let best: BestEpoch | null = snapshot?.state.best ?? null;
  const startEpoch = snapshot?.epoch ?? 0;
  const outDir = checked.outDir;
  const bars = createTrainingProgress(checked.progress, settings.epochs, startEpoch);
  // Lines written straight to stderr would tear the bars; the bars print them above themselves instead.
  const logger: Logger = bars.active && baseLogger === stderrLogger ? { info: (m) => bars.log(m), warn: (m) => bars.log(`warning: ${m}`) } : baseLogger;
  logSettings(logger, settings, checked.given, data.trainImages, snapshot !== null);
  const reportExtras = { recipe: settings.recipe, defaults: snapshot ? undefined : defaultedKeys(settings, checked.given) };
  let pool: WorkerPool | null = null;
  try {
    if (snapshot) {
      await restoreRun(snapshot, model, optimizer);
      logger.info(`resuming ${outDir} after epoch ${startEpoch} of ${settings.epochs}`);
    }
    const { features, classifier } = paramGroups(model);
    if (auto) workers = await autoWorkersThatFit(model, settings, auto, logger);
    if (workers > 1) {
      const { imageSize, numClasses, batchSize } = settings;
      if (!auto) await checkWorkerMemory({ model, workers, batchSize, imageSize, numClasses, optimizer: optimizerOf(settings) });
      const { syncBatchNorm } = checked;
      pool = await WorkerPool.start({ workers, model, optimizer: optimizer.settings, optimizerState: snapshot ? optimizer : undefined, classifier: classifierIndices(model), syncBatchNorm });
      const norm = syncBatchNorm ? 'batch norm synchronized' : "batch norm per worker, gradients averaged, rank 0's running statistics (PyTorch DDP's default)";
      logger.info(`data-parallel: ${workers} workers on ${tf.getBackend()}, batch ${settings.batchSize} split into shards of ${Math.ceil(settings.batchSize / workers)} or fewer, ${norm}`);
    }
    const runStep = pool ? poolSteps(pool) : localSteps(model, optimizer);
    if (outDir !== undefined) {
      if (checked.overwrite) await clearSnapshots(outDir);
      await writeClassNames(outDir, data.classNames);
    }
    for (let epoch = startEpoch; epoch < settings.epochs; epoch++) {
      const epochStart = performance.now();
      const seconds = () => (performance.now() - epochStart) / 1000;
      bars.startEpoch(epoch + 1, data.batchesPerEpoch);
      const frozen = settings.freezeFeatures && (settings.unfreezeAfter === null || epoch < settings.unfreezeAfter);
      if (settings.freezeFeatures && settings.unfreezeAfter === epoch && epoch > 0) logger.info(`unfreezing the features after epoch ${epoch}`);
      const groups = { features: frozen ? [] : features, classifier };
      const train = await explainingOom(
        () => trainEpoch(runStep, groups, data, settings, epoch, checked.callbacks, bars, outDir, history),
        oomContext,
      );
      // The model of record catches up with the replicas (weights for validation; the optimizer for the snapshot).
      if (pool) await pool.pull(model, outDir !== undefined ? optimizer : undefined);
      const val = data.val ? await explainingOom(() => evaluate(model, data.val!), oomContext) : null;
      const metrics: EpochMetrics = {
        epoch: epoch + 1,
        lr: train.lr,
        trainLoss: train.loss,
        trainAccuracy: train.accuracy,
        valLoss: val?.loss ?? null,
        valAccuracy: val?.accuracy ?? null,
        trainImages: train.images,
        seconds: 0,
        imagesPerSecond: train.images / train.seconds,
      };
      const improved = isBetter(metrics, best, history);
      if (improved) {
        best = { epoch: metrics.epoch, valAccuracy: metrics.valAccuracy, valLoss: metrics.valLoss, ...(val ? { confusion: val.confusion } : {}) };
        await bestWeights.keep(model);
      }
      if (outDir !== undefined) {
        if (improved) await model.save(fileSystemHandler(outDir));
        const nextEpochSeed = epochSeed(settings.seed, epoch + 1);
        const record = [...history, { ...metrics, seconds: seconds() }];
        await snapshotRun(outDir, epoch + 1, model, optimizer, { settings, classNames: data.classNames, history: record, best, data: { nextEpoch: epoch + 1, nextEpochSeed } });
      }
      metrics.seconds = seconds();
      history = [...history, metrics];
      if (outDir !== undefined) await writeReports(outDir, history, best!, data.classNames, settings, reportExtras);
      const summary = formatEpoch(metrics, settings.epochs);
      bars.endEpoch(metrics.epoch, summary);
      logger.info(summary);
      await checked.callbacks.onEpochEnd?.(metrics);
    }
    await bestWeights.restore(model, best!.epoch, settings.epochs, outDir);
  } catch (error) {
    if (model !== checked.layersModel) model.dispose();
    throw error;
  } finally {
    await pool?.close();
    bestWeights.dispose();
    optimizer.dispose();
    bars.stop();
  }
  return { model, history, best: best!, classNames: data.classNames, seed: settings.seed };
}
