/** Small SVG line charts for the live curves (no charting library in the page). */

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /** Draw a dot at each point (sparse series such as validation accuracy). */
  dots?: boolean;
}

const SVG = 'http://www.w3.org/2000/svg';
const W = 420;
const H = 200;
const PAD = { left: 44, right: 12, top: 24, bottom: 28 };

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

/** Redraws `svg` with the given series; `yMax` fixes the y range (accuracy: 1), else it follows the data. */
export function drawChart(svg: SVGSVGElement, title: string, xLabel: string, series: Series[], yMax?: number): void {
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map(([x]) => x));
  const top = yMax ?? niceMax(Math.max(0, ...all.map(([, y]) => y)));
  const px = (x: number) => PAD.left + (x / xMax) * (W - PAD.left - PAD.right);
  const py = (y: number) => H - PAD.bottom - (Math.min(y, top) / top) * (H - PAD.top - PAD.bottom);
  svg.append(el('text', { x: PAD.left, y: 15, 'font-size': 13, 'font-weight': 600, fill: '#222' }, title));
  for (let i = 0; i <= 4; i++) {
    const y = (top * i) / 4;
    svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: py(y), y2: py(y), stroke: '#e3e3e3' }));
    svg.append(el('text', { x: PAD.left - 6, y: py(y) + 4, 'font-size': 10, 'text-anchor': 'end', fill: '#555' }, top <= 1 ? y.toFixed(2) : y.toPrecision(2)));
  }
  svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: py(0), y2: py(0), stroke: '#888' }));
  svg.append(el('text', { x: W - PAD.right, y: H - 6, 'font-size': 10, 'text-anchor': 'end', fill: '#555' }, `${xLabel} (${Math.round(xMax)})`));
  let legendX = W - PAD.right;
  for (const s of [...series].reverse()) {
    const label = el('text', { x: legendX, y: 15, 'font-size': 11, 'text-anchor': 'end', fill: s.color }, s.name);
    svg.append(label);
    legendX -= s.name.length * 6.2 + 14;
    if (s.points.length === 0) continue;
    const d = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
    svg.append(el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 1.6 }));
    if (s.dots) for (const [x, y] of s.points) svg.append(el('circle', { cx: px(x), cy: py(y), r: 2.5, fill: s.color }));
  }
}
