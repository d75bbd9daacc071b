#!/usr/bin/env node
/**
 * The efficient-densenet command line: parses, calls the library, prints. Usage errors exit 2, failures
 * exit 1, each as one line on stderr (a stack trace only with --verbose).
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../util/errors.js';
import { stderrLogger } from '../util/logger.js';
import type { CommandIO } from './command-io.js';

type Command = (argv: string[], io: CommandIO) => Promise<void>;

// Each command prints its own --help; the commands' modules load only when used (train's loads sharp, bench's vega).
const COMMANDS: Record<string, { run: () => Promise<Command>; summary: string }> = {
  bench: { run: async () => (await import('./commands/bench.js')).benchCommand, summary: 'memory and speed of a training step, naive vs memory-efficient' },
  'max-batch': { run: async () => (await import('./commands/max-batch.js')).maxBatchCommand, summary: 'the largest batch that fits a memory budget' },
  train: { run: async () => (await import('./commands/train.js')).trainCommand, summary: 'train or fine-tune a DenseNet on an image folder' },
  evaluate: {
    run: async () => (await import('./commands/evaluate.js')).evaluateCommand,
    summary: 'accuracy, per-class precision/recall and confusion matrix on a folder',
  },
  predict: { run: async () => (await import('./commands/predict.js')).predictCommand, summary: 'top classes of images under a trained model' },
  doctor: { run: async () => (await import('./commands/doctor.js')).doctorCommand, summary: 'which backends run here, what auto picks, how to fix the rest' },
};

function usage(): string {
  return [
    'Usage: efficient-densenet <command> [options]',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    '',
    'Every command takes --backend (tensorflow | webgpu | wasm | cpu | meta | meta-wasm | auto; also EFFICIENT_DENSENET_BACKEND)',
    'and --help. Run `efficient-densenet <command> --help` for its options.',
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const [name, ...rest] = argv;
  const io: CommandIO = { stdout: (text) => process.stdout.write(`${text}\n`), logger: stderrLogger };
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.stdout(usage());
      return 0;
    }
    if (name === '--version') {
      io.stdout(version());
      return 0;
    }
    const command = COMMANDS[name];
    if (!command) throw new UsageError(`unknown command '${name}'; commands: ${Object.keys(COMMANDS).join(', ')}`);
    await (await command.run())(rest, io);
    return 0;
  } catch (error) {
    const usageError = error instanceof UsageError;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`efficient-densenet: ${usageError ? '' : 'error: '}${message.split('\n')[0]}\n`);
    if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return usageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
