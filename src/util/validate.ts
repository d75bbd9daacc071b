/**
 * The one place where caller input is checked. Every check throws a UsageError whose message names the
 * argument and what is allowed, before anything is allocated or written; `undefined` passes through
 * unchecked so that optional arguments can be validated in one line (`?? default` afterwards).
 * Used by the model configuration, the layers, trainDenseNet, measureTrainingStep, the weights loader
 * and the CLI (which parses strings first, then checks here).
 */
import { UsageError } from './errors.js';
import type { Logger } from './logger.js';

/** A short description of a value for error messages: `'text'`, `3`, `null`, `an array`, `an object`. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 60 ? `${value.slice(0, 60)}…` : value}'`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `an array of length ${value.length}` : 'an object';
}

/** An integer in [min, max] (default: a positive integer). */
export function integer(name: string, value: unknown, min = 1, max = Infinity): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const allowed = max !== Infinity ? `an integer in [${min}, ${max}]` : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
    throw new UsageError(`${name} must be ${allowed}, got ${describe(value)}`);
  }
  return value;
}

/** A finite number passing `test`; `allowed` says which in the message (e.g. 'a number > 0'). */
export function finiteNumber(name: string, value: unknown, test: (v: number) => boolean, allowed: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || !test(value)) {
    throw new UsageError(`${name} must be ${allowed}, got ${describe(value)}`);
  }
  return value;
}

export function boolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new UsageError(`${name} must be true or false, got ${describe(value)}`);
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw new UsageError(`${name} must be one of ${allowed.join(', ')}; got ${describe(value)}`);
  }
  return value as T;
}

export function nonEmptyString(name: string, value: unknown, what = 'a non-empty string'): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw new UsageError(`${name} must be ${what}, got ${describe(value)}`);
  return value;
}

/** A plain object (not null, not an array). */
export function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${name} must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/**
 * A memory size: a number of bytes, or a string like '4GiB', '512MiB', '16GB', '1e9'. Anything else — negative,
 * zero, a unit we do not know — gets one message naming the argument and the forms allowed.
 */
export function byteSize(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(value) : null;
  const bytes = typeof value === 'number' ? value : match ? Number(match[1]) * BYTE_UNITS[(match[2] ?? 'b').toLowerCase()]! : NaN;
  if (!Number.isFinite(bytes) || bytes < 1) {
    throw new UsageError(`${name}: ${describe(value)} is not a size; use a positive number with a unit, e.g. 4GiB, 512MiB, 16GB (or a number of bytes)`);
  }
  return Math.floor(bytes);
}

/** A Logger ({ info, warn }). */
export function logger(name: string, value: unknown): Logger | undefined {
  if (value === undefined) return undefined;
  const candidate = value as Partial<Logger> | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.info !== 'function' || typeof candidate.warn !== 'function') {
    throw new UsageError(`${name} must be a Logger ({ info, warn }), got ${describe(value)}`);
  }
  return value as Logger;
}

/** Rejects keys that are not in `allowed`, naming the first unknown one and listing the allowed. */
export function knownKeys(what: string, options: object, allowed: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw new UsageError(`unknown ${what} option '${key}'; allowed: ${allowed.join(', ')}`);
  }
}

/** Drops the keys whose value is `undefined`, so that `{ ...defaults, ...given }` keeps the defaults. */
export function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
