/** Parsing of command-line values; every failure is a UsageError naming the option and what is allowed. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../util/errors.js';
import { byteSize } from '../util/validate.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export type ParsedArgs<T extends OptionSpec> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>>;

export function parseCommandArgs<const T extends OptionSpec>(argv: string[], options: T, allowPositionals = false): ParsedArgs<T> {
  try {
    return parseArgs({ args: attachDashValues(argv, options), options, allowPositionals, strict: true as const });
  } catch (error) {
    const message = (error as Error).message;
    // parseArgs's words for a value that is missing or looks like an option ("argument is ambiguous").
    const noValue = /^Option '(--[\w-]+)(?: <value>)?' argument (?:missing|is ambiguous)/.exec(message);
    if (noValue) throw new UsageError(`${noValue[1]} needs a value`);
    throw new UsageError(message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

/**
 * `--budget -5GiB` → `--budget=-5GiB`: a value beginning with a single '-' (a negative number, a size) goes
 * to the option before it, so its own check names the option and what is allowed; parseArgs would take it
 * for an option and answer "argument is ambiguous". No command has single-dash options, so nothing is lost;
 * '--…' stays an option.
 */
function attachDashValues(argv: string[], options: OptionSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-[^-]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** An option's parsed value, or undefined when it was not given. */
export function optional<T>(value: string | undefined, parse: (v: string) => T): T | undefined {
  return value === undefined ? undefined : parse(value);
}

export function integer(value: string | undefined, option: string, { min = 1, fallback }: { min?: number; fallback?: number } = {}): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${option} is required`);
    return fallback;
  }
  if (!/^-?\d+$/.test(value.trim()) || Number(value) < min) {
    throw new UsageError(`--${option} must be an integer ≥ ${min}, got '${value}'`);
  }
  return Number(value);
}

export function number(value: string | undefined, option: string, fallback: number, { min = -Infinity, max = Infinity, exclusiveMin = false } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (exclusiveMin && n === min)) {
    const range = `${exclusiveMin ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}`;
    throw new UsageError(`--${option} must be a number ${range}, got '${value}'`);
  }
  return n;
}

export function integerList(value: string | undefined, option: string, fallback: number[], min = 1): number[] {
  if (value === undefined) return fallback;
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < min)) {
    throw new UsageError(`--${option} must be an integer ≥ ${min} or a comma-separated list of them (e.g. 16,32,64), got '${value}'`);
  }
  return parts.map(Number);
}

export function choice<T extends string>(value: string | undefined, option: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${option} must be one of ${allowed.join(', ')}; got '${value}'`);
  }
  return value as T;
}

/** '4GiB', '512MiB', '16GB', '1e9' → bytes. */
export function parseBytes(value: string | undefined, option: string): number {
  if (value === undefined) throw new UsageError(`--${option} is required (e.g. 4GiB, 512MiB, 16GB)`);
  return byteSize(`--${option}`, value) as number;
}

/**
 * The memory mode option of a command: `--memory-mode`, or its alias `--mode` (the name bench and max-batch
 * used before); giving both is an error. Returns the value as given (the caller resolves it), or the fallback.
 */
export function memoryModeValue(values: { 'memory-mode'?: string; mode?: string }, allowed: readonly string[], fallback: string): string;
export function memoryModeValue(values: { 'memory-mode'?: string; mode?: string }, allowed: readonly string[], fallback?: undefined): string | undefined;
export function memoryModeValue(values: { 'memory-mode'?: string; mode?: string }, allowed: readonly string[], fallback?: string): string | undefined {
  if (values['memory-mode'] !== undefined && values.mode !== undefined) throw new UsageError('--mode is an alias of --memory-mode; give one of them');
  const option = values.mode !== undefined ? 'mode' : 'memory-mode';
  const value = values['memory-mode'] ?? values.mode;
  if (value === undefined) return fallback;
  return choice(value, option, allowed, value);
}
