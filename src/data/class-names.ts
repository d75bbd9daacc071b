/**
 * A model folder's class names: `classes.json` beside model.json, written by training (in label order) and
 * read by predict and evaluate.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { UsageError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

export const CLASS_NAMES_FILE = 'classes.json';

/** Writes the class names of a model folder, whole or not at all. */
export async function writeClassNames(dir: string, classNames: readonly string[]): Promise<void> {
  await writeFileAtomic(path.join(dir, CLASS_NAMES_FILE), `${JSON.stringify(classNames, null, 2)}\n`);
}

/**
 * The class names of a model folder with `numClasses` outputs; without the file, the indices ('0', '1', …)
 * and a warning. A malformed file, or one naming another number of classes, is a UsageError naming it.
 */
export async function readClassNames(dir: string, numClasses: number, logger: Logger): Promise<string[]> {
  const file = path.join(dir, CLASS_NAMES_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    logger.warn(`${file} not found; classes are shown by index`);
    return Array.from({ length: numClasses }, (_, i) => String(i));
  }
  let names: unknown;
  try {
    names = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw new UsageError(`${file} must hold a JSON array of class names`);
  if (names.length !== numClasses) throw new UsageError(`${file} names ${names.length} classes but the model outputs ${numClasses}`);
  return names as string[];
}
