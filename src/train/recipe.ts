/**
 * The small-data recipe: what a run defaults to when its image folder is small and the caller asked for
 * nothing else, and the one line at the start that says every setting and where it came from.
 *
 * Why these values: a few hundred images are memorised within a few epochs; what makes a model generalise
 * from them is seeing each image differently every epoch (shifted, mirrored, recoloured, re-compressed —
 * JPEG artifacts are the usual shift between a folder of PNGs and photos) and weight decay with SGD. Colour
 * jitter and label smoothing are options, off by default: measured, they slowed learning more than they helped
 * within the few hundred steps a small folder gets. Large folders keep
 * the plain defaults: nothing here was measured better on them.
 */
import type { Logger } from '../util/logger.js';
import type { RunSettings } from './options.js';

/** A folder with fewer training images than this gets the small-data recipe. */
export const SMALL_DATA_IMAGES = 2000;

/** The recipe's values; each applies only where the caller left the setting out. */
export const SMALL_DATA_DEFAULTS = {
  augment: 'crop',
  /** As a fraction of imageSize: 4 px at 32², CIFAR's RandomCrop(32, padding=4). */
  cropPaddingFraction: 1 / 8,
  flip: true,
  /**
   * Off by default, an option: on a 400-image task (DenseNet-121, 32², batch 32, Adam; the earlier generator's
   * colour images) photometric 0.2 with label smoothing 0.1 on top of crop + flip + JPEG left the training
   * accuracy at 30% after 5 epochs where without them it reached 43%; in a budget of a few hundred steps that
   * costs more than it gives.
   */
  photometric: 0,
  jpegQuality: [40, 95] as [number, number],
  /** Off by default, an option (see photometric). */
  labelSmoothing: 0,
  /**
   * SGD only (CIFAR's 5e-4). Adam keeps its default 0: coupled L2 passes through Adam's normalisation, so a
   * weight whose loss gradient is small is pulled to zero at the full learning rate (measured: with 5e-4 a
   * DenseNet-121 stayed at chance on a 400-image task for the first epochs).
   */
  sgdWeightDecay: 5e-4,
} as const;

/** The settings the recipe decides, for the record of which were defaults. */
export const RECIPE_KEYS = ['augment', 'cropPadding', 'flip', 'photometric', 'jpegQuality', 'labelSmoothing', 'weightDecay'] as const;

export type RecipeName = 'small-data' | 'standard';

export function cropPaddingFor(imageSize: number): number {
  return Math.max(1, Math.round(imageSize * SMALL_DATA_DEFAULTS.cropPaddingFraction));
}

/**
 * Fills the recipe's settings that were not given: the small-data recipe for a folder of fewer than
 * SMALL_DATA_IMAGES training images, the standard one (no augmentation, the optimizer's weight decay, no
 * label smoothing) otherwise. `trainImages` is null for datasets, which get the standard recipe.
 */
export function applyRecipe(settings: RunSettings, given: Partial<RunSettings>, trainImages: number | null): RecipeName {
  const recipe: RecipeName = trainImages !== null && trainImages < SMALL_DATA_IMAGES ? 'small-data' : 'standard';
  const small = recipe === 'small-data';
  const fill = <K extends (typeof RECIPE_KEYS)[number]>(key: K, value: RunSettings[K]): void => {
    if (given[key] === undefined) settings[key] = value;
  };
  fill('augment', small ? SMALL_DATA_DEFAULTS.augment : 'none');
  fill('cropPadding', cropPaddingFor(settings.imageSize));
  fill('flip', SMALL_DATA_DEFAULTS.flip);
  fill('photometric', small ? SMALL_DATA_DEFAULTS.photometric : 0);
  fill('jpegQuality', small ? [...SMALL_DATA_DEFAULTS.jpegQuality] : null);
  fill('labelSmoothing', small ? SMALL_DATA_DEFAULTS.labelSmoothing : 0);
  if (small && given.weightDecay === undefined && settings.optimizer === 'sgd') settings.weightDecay = SMALL_DATA_DEFAULTS.sgdWeightDecay;
  settings.recipe = recipe;
  return recipe;
}

/** The settings' keys that came from defaults (not given by the caller), for history.json. */
export function defaultedKeys(settings: RunSettings, given: Partial<RunSettings>): string[] {
  return Object.keys(settings).filter((key) => key !== 'recipe' && given[key as keyof RunSettings] === undefined);
}

const SHOWN: (keyof RunSettings)[] = [
  'model', 'imageSize', 'batchSize', 'epochs', 'optimizer', 'lr', 'schedule', 'weightDecay', 'momentum', 'labelSmoothing',
  'augment', 'cropPadding', 'flip', 'photometric', 'jpegQuality', 'freezeFeatures', 'unfreezeAfter', 'featuresLrScale', 'valSplit', 'seed',
];

function show(value: unknown): string {
  if (Array.isArray(value)) return value.join('–');
  return typeof value === 'number' ? String(Number(value.toPrecision(6))) : String(value);
}

/** Logs, once at the start, every setting that decides the run's numbers; defaults marked with *. */
export function logSettings(logger: Logger, settings: RunSettings, given: Partial<RunSettings>, trainImages: number | null, resumed: boolean): void {
  if (resumed) {
    logger.info(`settings (resumed; ${settings.recipe} recipe): ${SHOWN.map((key) => `${key} ${show(settings[key])}`).join(', ')}`);
    return;
  }
  const why =
    settings.recipe === 'small-data'
      ? `small-data recipe: ${trainImages} training images < ${SMALL_DATA_IMAGES}`
      : trainImages !== null
        ? `standard recipe: ${trainImages} training images`
        : 'standard recipe: datasets';
  const parts = SHOWN.filter((key) => settings[key] !== null || key === 'jpegQuality' || key === 'unfreezeAfter').map(
    (key) => `${key} ${show(settings[key])}${given[key] === undefined ? '*' : ''}`,
  );
  logger.info(`settings (${why}; * = default, each overridable): ${parts.join(', ')}`);
}
