/**
 * What a run leaves to look at: a line per epoch, history.json, metrics.csv and the loss and accuracy curves
 * (SVG), each written atomically after every epoch; and which epoch is the best so far.
 */
import * as path from 'node:path';
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

export async function writeReports(outDir: string, history: EpochMetrics[], best: BestEpoch, classNames: string[], settings: RunSettings): Promise<void> {
  await writeFileAtomic(path.join(outDir, 'history.json'), `${JSON.stringify({ history, best, classNames, settings }, null, 2)}\n`);
  await writeFileAtomic(path.join(outDir, 'metrics.csv'), metricsCsv(history));
  const series = (name: string, pick: (m: EpochMetrics) => number | null) => ({
    name,
    points: history.map((m) => ({ x: m.epoch, y: pick(m) ?? NaN })),
  });
  const hasVal = history.some((m) => m.valLoss !== null);
  const loss = await renderLineChartSvg({
    title: 'Loss',
    xLabel: 'epoch',
    yLabel: 'softmax cross-entropy',
    series: [series('train', (m) => m.trainLoss), ...(hasVal ? [series('validation', (m) => m.valLoss)] : [])],
  });
  const accuracy = await renderLineChartSvg({
    title: 'Accuracy',
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: [series('train', (m) => m.trainAccuracy), ...(hasVal ? [series('validation', (m) => m.valAccuracy)] : [])],
  });
  await writeFileAtomic(path.join(outDir, 'loss.svg'), loss);
  await writeFileAtomic(path.join(outDir, 'accuracy.svg'), accuracy);
}
