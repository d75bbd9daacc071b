import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from './render.js';
import { UsageError } from '../util/errors.js';

export interface ConfusionChartOptions {
  title: string;
  classNames: string[];
  /** confusion[true class][predicted class]: counts. */
  confusion: number[][];
}

/**
 * A confusion matrix as a standalone SVG heat map (vega-lite rendered headless by vega, as the line
 * charts): true class down, predicted class across, each cell's count written in it and shaded by the
 * fraction of its row (the class's recall on the diagonal), so that rare classes read as clearly as common ones.
 */
export async function renderConfusionSvg(options: ConfusionChartOptions): Promise<string> {
  const { title, classNames, confusion } = options;
  const k = classNames.length;
  if (k === 0) throw new UsageError('classNames must name at least one class');
  if (confusion.length !== k || confusion.some((row) => row.length !== k || row.some((v) => !(Number.isInteger(v) && v >= 0)))) {
    throw new UsageError(`confusion must be a ${k}×${k} matrix of counts (one row and one column per class)`);
  }
  const values = confusion.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({ truth: classNames[t]!, predicted: classNames[p]!, count, fraction: total > 0 ? count / total : 0 }));
  });
  const cell = Math.max(28, Math.min(64, Math.floor(480 / k)));
  const order = { sort: classNames };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    width: cell * k,
    height: cell * k,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', title: 'predicted', ...order, axis: { labelAngle: -45, orient: 'top' } },
      y: { field: 'truth', type: 'nominal', title: 'true class', ...order },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'fraction', type: 'quantitative', title: 'fraction of row', scale: { scheme: 'blues', domain: [0, 1] } },
        },
      },
      {
        mark: { type: 'text', fontSize: cell > 40 ? 13 : 10 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.fraction > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
  };
  return renderSvg(spec);
}
