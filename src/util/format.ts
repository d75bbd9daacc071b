/** Byte counts for people: the one MiB formatter of the library, the CLI and the training log. */

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
