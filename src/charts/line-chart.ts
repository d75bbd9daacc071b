import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from './render.js';
import { UsageError } from '../util/errors.js';

export interface ChartPoint {
  x: number;
  y: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Drawn in this order; the legend lists them in this order too. Names must be distinct. */
  series: ChartSeries[];
  /** Default 'linear'. With 'log' every x must be > 0. */
  xScale?: 'linear' | 'log';
  /** Default 'linear'. With 'log' points with y ≤ 0 are left out (they have no place on the axis). */
  yScale?: 'linear' | 'log';
  /** Label the x axis with integers only (batch sizes, epochs): ticks on whole numbers, no decimals. */
  integerX?: boolean;
  /** Dashed horizontal lines (a budget), labelled at their right end. */
  rules?: Array<{ y: number; label: string }>;
  /** Plot area in px (axes, title and legend come on top). Defaults 640 × 360. */
  width?: number;
  height?: number;
}

/**
 * A line chart with one coloured, point-marked line per series and a legend, as a standalone SVG
 * document. Built from a vega-lite spec rendered headless by vega (renderer 'none' + toSVG needs no canvas;
 * text widths are estimated instead of measured, which only affects label-overlap decisions).
 *
 * Points with a non-finite y (a diverged loss, a failed run) are left out rather than rejected, so the
 * series shows a shorter line instead of the whole chart failing. A non-finite x is a caller error.
 */
export async function renderLineChartSvg(options: LineChartOptions): Promise<string> {
  const { title, xLabel, yLabel, series, xScale = 'linear', yScale = 'linear', integerX = false, rules = [], width = 640, height = 360 } = options;
  if (series.length === 0) throw new UsageError('series must hold at least one series');
  const names = series.map((s) => s.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) throw new UsageError(`series names must be distinct; '${duplicate}' appears twice`);
  if (xScale !== 'linear' && xScale !== 'log') {
    throw new UsageError(`xScale must be 'linear' or 'log', got '${String(xScale)}'`);
  }
  for (const [what, v] of [['width', width], ['height', height]] as const) {
    if (!(Number.isFinite(v) && v >= 50 && v <= 10000)) throw new UsageError(`${what} must be from 50 to 10000 px, got ${v}`);
  }

  const values: { series: string; x: number; y: number; order: number }[] = [];
  for (const s of series) {
    s.points.forEach((p, order) => {
      if (!Number.isFinite(p.x)) throw new UsageError(`series '${s.name}' has a non-finite x (${p.x}) at point ${order}`);
      if (xScale === 'log' && p.x <= 0) {
        throw new UsageError(`series '${s.name}' has x = ${p.x} at point ${order}; a log x scale needs x > 0`);
      }
      if (Number.isFinite(p.y) && (yScale === 'linear' || p.y > 0)) values.push({ series: s.name, x: p.x, y: p.y, order });
    });
  }

  const distinctX = [...new Set(values.map((v) => v.x))].sort((a, b) => a - b);
  const consecutive = distinctX.every((x, i) => i === 0 || x - distinctX[i - 1]! === 1);
  const lines = {
    data: { values },
    mark: { type: 'line', point: { filled: true, size: 40 }, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: xLabel,
        scale: xScale === 'log' ? { type: 'log' } : { zero: false },
        // A few scattered x (batch sizes): tick exactly those; consecutive or many (epochs): whole-number ticks.
        // (vega drops a label of explicit tick values 1, 2, 3, so consecutive integers take tickMinStep.)
        ...(integerX ? { axis: distinctX.length <= 12 && !consecutive ? { format: 'd', values: distinctX } : { format: 'd', tickMinStep: 1 } } : {}),
      },
      y: { field: 'y', type: 'quantitative', title: yLabel, ...(yScale === 'log' ? { scale: { type: 'log' } } : {}) },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        // An explicit domain keeps the caller's order and gives every series a legend entry, even one
        // whose points were all left out.
        scale: { domain: names },
        legend: { orient: 'right', labelLimit: 400 },
      },
      // Lines join points in the order the caller gave them, not sorted by x.
      order: { field: 'order', type: 'quantitative' },
    },
  } as const;
  const ruleLayers = rules.flatMap((rule) => [
    { data: { values: [{ y: rule.y }] }, mark: { type: 'rule', strokeDash: [6, 4], color: '#444' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
    {
      data: { values: [{ y: rule.y, label: rule.label }] },
      mark: { type: 'text', align: 'right', baseline: 'bottom', dx: -4, dy: -3, x: width, color: '#444' },
      encoding: { y: { field: 'y', type: 'quantitative' }, text: { field: 'label' } },
    },
  ]);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width,
    height,
    background: 'white',
    ...(ruleLayers.length === 0 ? lines : { layer: [lines, ...ruleLayers] }),
  } as unknown as TopLevelSpec;

  return renderSvg(spec);
}
