/** What a command writes to: its output (stdout) and its progress and notes (a logger, stderr by default). */
import type { Logger } from '../util/logger.js';

export interface CommandIO {
  stdout: (text: string) => void;
  logger: Logger;
}
