/** Byte counts for people: the one MiB formatter of the library, the CLI and the training log, and sizes as given. */

export const MIB = 2 ** 20;

export interface FormatMiBOptions {
  /** Append ' MiB' (default true; tables name the unit in their header). */
  unit?: boolean;
  /** 'up' where the figure is a minimum to give (a budget that fits must not be rounded below it); default 'nearest'. */
  round?: 'nearest' | 'up';
}

/** '1,234 MiB'; '—' for a missing figure. */
export function formatMiB(bytes: number | null | undefined, { unit = true, round = 'nearest' }: FormatMiBOptions = {}): string {
  if (bytes === null || bytes === undefined) return '—';
  const mib = round === 'up' ? Math.ceil(bytes / MIB) : Math.round(bytes / MIB);
  return `${mib.toLocaleString('en-US')}${unit ? ' MiB' : ''}`;
}

const SIZE_UNITS: Array<[string, number]> = [
  ['TiB', 2 ** 40], ['TB', 1e12], ['GiB', 2 ** 30], ['GB', 1e9], ['MiB', 2 ** 20], ['MB', 1e6], ['KiB', 2 ** 10], ['KB', 1e3],
];

/**
 * A size the way its caller wrote it: in the largest unit of which it is a whole number, or one with up to
 * three decimals below 1000 of it (1024 → '1 KiB', 16e9 → '16 GB', 1.5 × 2^30 → '1.5 GiB'), so a message
 * echoes '1KiB' as '1 KiB' rather than a rounded '1 MiB'. A size no unit writes exactly (a share of one, say)
 * gets '≈' and binary units.
 */
export function formatSize(bytes: number): string {
  for (const [unit, scale] of SIZE_UNITS) {
    const value = bytes / scale;
    const whole = Number.isInteger(value);
    // Any whole number of bytes is a 3-decimal number of KB: decimals only where the unit is the natural one.
    if (value >= 1 && (whole || (value < 1000 && Math.abs(value * 1000 - Math.round(value * 1000)) < 1e-6))) return `${Number(value.toFixed(3))} ${unit}`;
  }
  if (Number.isInteger(bytes) && bytes < 2 ** 10) return `${bytes} B`;
  const [unit, scale] = SIZE_UNITS.filter(([u]) => u.endsWith('iB')).find(([, s]) => bytes >= s) ?? ['B', 1];
  return `≈${Number((bytes / scale).toFixed(3))} ${unit}`;
}
