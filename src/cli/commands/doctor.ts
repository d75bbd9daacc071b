/** `efficient-densenet doctor`: which backends run here, why not, what auto picks, and how to fix each. */
import { diagnoseBackends } from '../../backend/doctor/index.js';
import { parseCommandArgs } from '../args.js';
import type { CommandIO } from '../command-io.js';

export const DOCTOR_HELP = `Usage: efficient-densenet doctor [--json]
Checks each backend without loading any: the packages; for tensorflow (tfjs-node-gpu) the CUDA and cuDNN
versions it needs and those found; for webgpu the Vulkan loader, the driver and the adapter (name, software
or hardware, buffer limits); for wasm SIMD, relaxed SIMD, threads and the heap limit. Says which backend
'auto' would pick and gives one line to fix each that is missing.
  --json      print the report as JSON
  --verbose   stack traces on failure`;

export const DOCTOR_OPTIONS = {
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

export async function doctorCommand(argv: string[], io: CommandIO): Promise<void> {
  const { values } = parseCommandArgs(argv, DOCTOR_OPTIONS);
  if (values.help) return io.stdout(DOCTOR_HELP);
  const report = await diagnoseBackends();
  if (values.json) return io.stdout(JSON.stringify(report, null, 2));
  const width = Math.max(...report.backends.map((b) => b.backend.length));
  const rows = report.backends.map((b) => `  ${b.backend.padEnd(width)}  ${b.available ? 'yes' : 'no '}  ${b.detail}`);
  const fixes = report.backends.filter((b) => b.fix).map((b) => `  ${b.backend}: ${b.fix}`);
  io.stdout(
    [
      `Node ${report.node}`,
      '',
      `  ${'backend'.padEnd(width)}  ok?  what was found`,
      ...rows,
      '',
      `auto picks ${report.auto.backend}: ${report.auto.why}`,
      ...(fixes.length > 0 ? ['', 'to fix:', ...fixes] : []),
    ].join('\n'),
  );
}
