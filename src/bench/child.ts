/**
 * One benchmark configuration in a process of its own (spawned by runBenchConfigIsolated): prints the
 * result as JSON on stdout; exits 1 with one line on stderr when the configuration fails.
 */
import { initBackend, type BackendName } from '../backend/index.js';
import { runBenchConfig, type BenchConfig } from './benchmark.js';

const { config, backend } = JSON.parse(process.argv[2] ?? '{}') as { config: BenchConfig; backend: BackendName };
try {
  await initBackend(backend);
  const result = await runBenchConfig(config);
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`);
  process.exitCode = 1;
}
