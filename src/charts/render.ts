/**
 * A vega-lite spec rendered to a standalone SVG document, headless: vega's renderer 'none' plus toSVG needs no
 * canvas (text widths are estimated instead of measured, which only affects label-overlap decisions).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
