/**
 * What a run leaves to look at: a line per epoch, history.json, metrics.csv and the loss and accuracy curves
 * (SVG), each written atomically after every epoch; and which epoch is the best so far.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { renderConfusionSvg } from '../charts/confusion-chart.js';
import { renderLineChartSvg } from '../charts/line-chart.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { RunSettings } from './options.js';
import type { BestEpoch, EpochMetrics } from './types.js';

/** Higher validation accuracy wins, ties go to the lower validation loss; without validation, the lower training loss. */
export function isBetter(metrics: EpochMetrics, best: BestEpoch | null, history: EpochMetrics[]): boolean {
  if (best === null) return true;
  if (metrics.valAccuracy !== null && best.valAccuracy !== null) {
    if (metrics.valAccuracy !== best.valAccuracy) return metrics.valAccuracy > best.valAccuracy;
    return (metrics.valLoss ?? Infinity) < (best.valLoss ?? Infinity);
  }
  const previous = history.find((h) => h.epoch === best.epoch);
  return previous === undefined || metrics.trainLoss < previous.trainLoss;
}

export function formatEpoch(m: EpochMetrics, epochs: number): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const val = m.valLoss !== null && m.valAccuracy !== null ? ` | val loss ${m.valLoss.toFixed(4)} acc ${pct(m.valAccuracy)}` : '';
  return (
    `epoch ${m.epoch}/${epochs}: loss ${m.trainLoss.toFixed(4)} acc ${pct(m.trainAccuracy)}${val} | ` +
    `lr ${m.lr.toPrecision(3)} | ${m.imagesPerSecond.toFixed(1)} img/s | ${m.seconds.toFixed(1)} s`
  );
}

const CSV_COLUMNS = ['epoch', 'lr', 'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'train_images', 'seconds', 'images_per_second'];

export function metricsCsv(history: EpochMetrics[]): string {
  const cell = (v: number | null) => (v === null ? '' : String(v));
  const rows = history.map((m) =>
    [m.epoch, m.lr, m.trainLoss, m.trainAccuracy, m.valLoss, m.valAccuracy, m.trainImages, m.seconds, m.imagesPerSecond].map(cell).join(','),
  );
  return `${[CSV_COLUMNS.join(','), ...rows].join('\n')}\n`;
}

/** What history.json records besides the epochs: the recipe, and which settings were defaults (fresh runs). */
export interface ReportExtras {
  recipe: string;
  defaults?: string[];
}

export async function writeReports(
  outDir: string,
  history: EpochMetrics[],
  best: BestEpoch,
  classNames: string[],
  settings: RunSettings,
  extras: ReportExtras,
): Promise<void> {
  // A resumed run keeps the record of defaults that its first process wrote.
  const defaults = extras.defaults ?? (await readDefaults(path.join(outDir, 'history.json')));
  const record = { history, best, classNames, settings, recipe: extras.recipe, ...(defaults ? { defaults } : {}) };
  await writeFileAtomic(path.join(outDir, 'history.json'), `${JSON.stringify(record, null, 2)}\n`);
  if (best.confusion) {
    const svg = await renderConfusionSvg({ title: `Validation confusion matrix (best epoch, ${best.epoch})`, classNames, confusion: best.confusion });
    await writeFileAtomic(path.join(outDir, 'confusion.svg'), svg);
  }
  await writeFileAtomic(path.join(outDir, 'metrics.csv'), metricsCsv(history));
  const series = (name: string, pick: (m: EpochMetrics) => number | null) => ({
    name,
    points: history.map((m) => ({ x: m.epoch, y: pick(m) ?? NaN })),
  });
  const hasVal = history.some((m) => m.valLoss !== null);
  const loss = await renderLineChartSvg({
    title: 'Loss',
    xLabel: 'epoch',
    integerX: true,
    yLabel: 'softmax cross-entropy',
    series: [series('train', (m) => m.trainLoss), ...(hasVal ? [series('validation', (m) => m.valLoss)] : [])],
  });
  const accuracy = await renderLineChartSvg({
    title: 'Accuracy',
    xLabel: 'epoch',
    integerX: true,
    yLabel: 'accuracy',
    series: [series('train', (m) => m.trainAccuracy), ...(hasVal ? [series('validation', (m) => m.valAccuracy)] : [])],
  });
  await writeFileAtomic(path.join(outDir, 'loss.svg'), loss);
  await writeFileAtomic(path.join(outDir, 'accuracy.svg'), accuracy);
}

async function readDefaults(file: string): Promise<string[] | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as { defaults?: unknown };
    return Array.isArray(parsed.defaults) ? (parsed.defaults as string[]) : undefined;
  } catch {
    return undefined;
  }
}
