/**
 * A benchmark configuration loaded once, in a process of its own, then stepped on demand: what `bench --repeat`
 * alternates. A machine's speed drifts within a minute, so configurations are compared step by step, seconds
 * apart, instead of whole runs a minute apart; and the warm-up is paid once per process, not once per round.
 *
 * The protocol, one JSON object per line on the child's stdout: `{"ready": true}` once loaded and warmed up,
 * then `{"ms": …}` for each `step` line on its stdin, or `{"error": "…"}`; the child exits when its stdin
 * closes. Both the tfjs child (src/bench/stepper-child.ts) and PyTorch's (python/pytorch_step.py serve) speak it.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BackendName } from '../backend/index.js';
import type { BenchConfig } from './benchmark.js';

/** A loaded, warmed-up configuration. */
export interface Stepper {
  /** Runs one training step; resolves with its wall time in ms (rejects when the process failed). */
  step(): Promise<number>;
  /** Ends the process (idempotent). */
  close(): Promise<void>;
}

/**
 * Steps run after loading, before any is timed. Five, not the single-run benchmark's two (WARMUP_STEPS):
 * V8 keeps optimising tfjs's JavaScript for several steps, in background threads that take the cores the
 * steps need. Summed over a 2-worker pool's isolates (`node --trace-opt`, DenseNet-121 112² b16 `layer`,
 * wasm): TurboFan compiled for 3,375 ms during the first two steps, 295–340 ms in the third, 110–116 in the
 * fourth, 44–60 in the fifth.
 */
export const STEPPER_WARMUP_STEPS = 5;

/** A child entry point beside `from` (a module URL) as this installation has it: compiled .js, or .ts under tsx. */
export function nodeEntry(from: string, name: string): { command: string; args: string[] } {
  const here = fileURLToPath(from);
  const isTs = here.endsWith('.ts');
  const entry = here.replace(/[^/\\]+\.(ts|js)$/, `${name}.${isTs ? 'ts' : 'js'}`);
  return { command: process.execPath, args: [...(isTs ? ['--import', 'tsx'] : []), entry] };
}

/** Why a benchmark process ended without a result, in one line (the last line of its stderr when it said one). */
export function describeExit(code: number | null, signal: NodeJS.Signals | null, stderr: string): string {
  const lastLine = stderr.trim().split('\n').filter(Boolean).pop() ?? '';
  const refused = /^UsageError: (.*)$/.exec(lastLine);
  if (refused) return `refused: ${refused[1]}`;
  if (signal) return `crashed: killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}`;
  if (/out of memory|heap out of memory|OutOfMemoryError/i.test(stderr)) return `out of memory: ${lastLine}`;
  return `crashed (exit ${code}): ${lastLine || 'no output'}`;
}

/** Starts `command args` and waits for it to be ready (see the protocol above). */
export function openStepper(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Stepper> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-16_384)));
  const waiting: Array<{ resolve: (message: Record<string, unknown>) => void; reject: (error: Error) => void }> = [];
  let ended: Error | null = null;
  const exited = new Promise<void>((resolve) => {
    const end = (error: Error) => {
      ended ??= error;
      for (const w of waiting.splice(0)) w.reject(ended);
      resolve();
    };
    child.on('error', (error) => end(new Error(`could not start the benchmark process: ${error.message}`)));
    child.on('close', (code, signal) => end(new Error(code === 0 && !signal ? 'the benchmark process has ended' : describeExit(code, signal, stderr))));
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // anything else a library printed
    }
    if (typeof message !== 'object' || message === null) return;
    const next = waiting.shift();
    if (!next) return;
    if (typeof message.error === 'string') next.reject(new Error(message.error));
    else next.resolve(message);
  });
  // A stdin the child has closed (it crashed) must not crash this process.
  child.stdin.on('error', () => undefined);
  const request = (line?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (ended) return reject(ended);
      waiting.push({ resolve, reject });
      if (line) child.stdin.write(`${line}\n`);
    });
  const close = async () => {
    child.stdin.end();
    await exited;
  };
  return request().then(
    () => ({
      step: async () => {
        const { ms } = await request('step');
        if (typeof ms !== 'number') throw new Error(`the benchmark process answered a step without its time: ${JSON.stringify(ms)}`);
        return ms;
      },
      close,
    }),
    async (error: Error) => {
      await close();
      throw error;
    },
  );
}

/** A tfjs benchmark configuration in a process of its own (src/bench/stepper-child.ts), warmed up. */
export function openBenchStepper(config: BenchConfig, backend: BackendName, warmup = STEPPER_WARMUP_STEPS): Promise<Stepper> {
  const { command, args } = nodeEntry(import.meta.url, 'stepper-child');
  return openStepper(command, [...args, JSON.stringify({ config, backend, warmup })], { ...process.env, TF_FORCE_GPU_ALLOW_GROWTH: 'true' });
}
