import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/util/errors.js';
import { type LineChartOptions, renderLineChartSvg } from '../src/charts/line-chart.js';

/** The text content of every <text> element, entities decoded. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&'),
  );
}

const base: LineChartOptions = {
  title: 'Peak memory by batch size',
  xLabel: 'Batch size',
  yLabel: 'Peak memory (MiB)',
  series: [
    { name: 'naive', points: [1, 2, 4, 8, 16].map((x) => ({ x, y: 30 * x + 10 })) },
    { name: 'efficient <shared> & recomputed', points: [1, 2, 4, 8, 16].map((x) => ({ x, y: 9 * x + 10 })) },
  ],
};

describe('renderLineChartSvg', () => {
  it('renders a standalone SVG with title, axis titles, and a legend entry per series', async () => {
    const svg = await renderLineChartSvg(base);
    expect(svg.startsWith('<svg')).toBe(true);
    const t = texts(svg);
    expect(t).toContain('Peak memory by batch size');
    expect(t).toContain('Batch size');
    expect(t).toContain('Peak memory (MiB)');
    expect(t).toContain('naive');
    expect(t).toContain('efficient <shared> & recomputed');
    // Special characters arrive escaped, so the document stays well-formed.
    expect(svg).toContain('efficient &lt;shared&gt; &amp; recomputed');
    // One line per series, a point mark for each of the 10 points, a two-entry legend.
    expect(svg.match(/aria-roledescription="line mark"/g)).toHaveLength(2);
    expect(svg.match(/aria-roledescription="point"/g)).toHaveLength(10);
    expect(svg.match(/class="mark-symbol role-legend-symbol"/g)).toHaveLength(2);
    expect(svg).toMatch(/<g class="mark-text role-title-text"[^>]*><text[^>]*>Peak memory by batch size<\/text>/);

    // A real SVG parser (librsvg through sharp) accepts it and sees the requested size plus margins.
    const meta = await sharp(Buffer.from(svg)).metadata();
    expect(meta.format).toBe('svg');
    expect(meta.width).toBeGreaterThan(640);
    expect(meta.height).toBeGreaterThan(360);
  });

  it('a log y scale, integer batch ticks and a labelled budget rule', async () => {
    const svg = await renderLineChartSvg({
      ...base,
      yScale: 'log',
      integerX: true,
      rules: [{ y: 300, label: 'budget 300 MiB' }],
      series: [
        { name: 'a', points: [1, 2, 3].map((x) => ({ x, y: 10 ** x })) },
        { name: 'b', points: [{ x: 1, y: 0 }, { x: 2, y: 5 }] },
      ],
    });
    const t = texts(svg);
    expect(t).toContain('budget 300 MiB');
    expect(t).toEqual(expect.arrayContaining(['10', '100', '1,000']));
    // Batch ticks are whole numbers: no '1.5' between batches 1 and 2.
    expect(t.filter((s) => /^\d+\.\d+$/.test(s))).toEqual([]);
    // y = 0 has no place on a log axis: 3 + 1 points.
    expect(svg.match(/aria-roledescription="point"/g)).toHaveLength(4);
    expect((await sharp(Buffer.from(svg)).metadata()).format).toBe('svg');
  });

  it('honours width, height and a log x scale', async () => {
    const svg = await renderLineChartSvg({
      ...base,
      xScale: 'log',
      width: 300,
      height: 200,
      series: [{ name: 'only', points: [1, 10, 100, 1000].map((x) => ({ x, y: Math.log10(x) })) }],
    });
    const t = texts(svg);
    // Log ticks land on the decades; a linear axis over [1, 1000] would label 200, 400, ...
    expect(t).toEqual(expect.arrayContaining(['1', '10', '100', '1,000']));
    expect(t).not.toContain('400');
    const meta = await sharp(Buffer.from(svg)).metadata();
    expect(meta.width).toBeGreaterThan(300);
    expect(meta.width).toBeLessThan(640);
  });

  it('leaves out non-finite y values but keeps the series in the legend', async () => {
    const svg = await renderLineChartSvg({
      ...base,
      series: [
        { name: 'train', points: [{ x: 1, y: 2 }, { x: 2, y: 1 }] },
        { name: 'diverged', points: [{ x: 1, y: Number.NaN }, { x: 2, y: Number.POSITIVE_INFINITY }] },
      ],
    });
    expect(texts(svg)).toEqual(expect.arrayContaining(['train', 'diverged']));
    expect(svg).not.toMatch(/NaN|Infinity/);
    expect(svg.match(/aria-roledescription="point"/g)).toHaveLength(2);
    expect(svg.match(/class="mark-symbol role-legend-symbol"/g)).toHaveLength(2);
  });

  it('rejects bad input with a UsageError naming it', async () => {
    const cases: [LineChartOptions, RegExp][] = [
      [{ ...base, series: [] }, /series must hold at least one series/],
      [{ ...base, series: [base.series[0]!, base.series[0]!] }, /series names must be distinct; 'naive' appears twice/],
      [{ ...base, xScale: 'log', series: [{ name: 'z', points: [{ x: 0, y: 1 }] }] }, /series 'z' has x = 0 at point 0; a log x scale needs x > 0/],
      [{ ...base, series: [{ name: 'n', points: [{ x: 1, y: 1 }, { x: Number.NaN, y: 1 }] }] }, /series 'n' has a non-finite x \(NaN\) at point 1/],
      [{ ...base, width: 10 }, /width must be from 50 to 10000 px/],
    ];
    for (const [options, message] of cases) {
      const error = await renderLineChartSvg(options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('epoch axes and confusion matrices', () => {
  it('labels an epoch axis with whole numbers only', async () => {
    // y in the hundreds, so that every decimal label would be on the x axis.
    const series = [{ name: 'train', points: [1, 2, 3].map((x) => ({ x, y: 100 * x })) }];
    const plain = texts(await renderLineChartSvg({ title: 't', xLabel: 'epoch', yLabel: 'loss', series }));
    expect(plain).toContain('1.5');
    const whole = texts(await renderLineChartSvg({ title: 't', xLabel: 'epoch', yLabel: 'loss', series, integerX: true }));
    expect(whole).toEqual(expect.arrayContaining(['1', '2', '3']));
    expect(whole.filter((t) => /^\d+\.\d+$/.test(t))).toEqual([]);
  });

  it('renders a confusion matrix with every count in its cell and rejects a matrix of the wrong size', async () => {
    const { renderConfusionSvg } = await import('../src/charts/confusion-chart.js');
    const svg = await renderConfusionSvg({ title: 'Confusion', classNames: ['cat', 'dog'], confusion: [[7, 1], [2, 13]] });
    const t = texts(svg);
    expect(t).toEqual(expect.arrayContaining(['Confusion', 'cat', 'dog', '7', '1', '2', '13', 'predicted', 'true class']));
    expect((await sharp(Buffer.from(svg)).metadata()).format).toBe('svg');
    await expect(renderConfusionSvg({ title: 'x', classNames: ['a', 'b'], confusion: [[1, 2]] })).rejects.toBeInstanceOf(UsageError);
  });
});
