/**
 * Asks Dawn for an adapter in a child process. Dawn writes its diagnostics (why a Vulkan driver was
 * rejected, Mesa's WSI complaints) straight to the process's stderr from native code, where no Logger can
 * catch them; the library must not print, and `auto` must be able to look for a GPU and fall back to wasm
 * without leaving Dawn's lines on the user's terminal. The child's stderr is kept and its gist becomes part
 * of the error when there is no adapter.
 */
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { POWER_PREFERENCE, type DawnAdapter } from './adapter.js';

const MODULE_ENV = 'EFFICIENT_DENSENET_DAWN_MODULE';

// Plain JavaScript for `node --input-type=module -e`: prints the adapter's info as JSON (null: none).
const PROBE_SCRIPT = `
const { create, globals } = await import(process.env.${MODULE_ENV});
Object.assign(globalThis, globals);
const adapter = await create([]).requestAdapter({ powerPreference: '${POWER_PREFERENCE}' });
const pick = (o) => o && { vendor: o.vendor, architecture: o.architecture, device: o.device, description: o.description, isFallbackAdapter: o.isFallbackAdapter };
const limits = adapter && { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize };
const out = adapter ? { info: pick(adapter.info), isFallbackAdapter: adapter.isFallbackAdapter, limits } : null;
process.stdout.write(JSON.stringify(out) + '\\n', () => process.exit(0));
`;

export interface ProbeResult {
  /** The adapter Dawn gives tfjs, or null. */
  adapter: DawnAdapter | null;
  /** Dawn's own explanation when it found none (its warnings, one line), or ''. */
  diagnostics: string;
}

export function probeAdapter(webgpuPath: string, timeoutMs = 60_000): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', PROBE_SCRIPT],
      { env: { ...process.env, [MODULE_ENV]: pathToFileURL(webgpuPath).href }, timeout: timeoutMs, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        const diagnostics = dawnDiagnostics(stderr);
        const line = stdout.trim().split('\n').pop() ?? '';
        if (error && line === '') {
          reject(new Error(`Dawn (webgpu package) failed to start: ${diagnostics || stderr.trim().split('\n')[0] || error.message}`));
          return;
        }
        try {
          resolve({ adapter: JSON.parse(line) as DawnAdapter | null, diagnostics });
        } catch {
          reject(new Error(`Dawn (webgpu package) printed no adapter description: ${line.slice(0, 200)}`));
        }
      },
    );
  });
}

/**
 * Dawn's reasons, e.g. "Vulkan shaderUniform*ArrayDynamicIndexing required" for Debian 12's Mesa 22.3:
 * its Warning/Error lines without their prefix, call stacks and Mesa's XDG_RUNTIME_DIR notes (harmless
 * without a display) left out.
 */
export function dawnDiagnostics(stderr: string): string {
  const reasons = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^(warning|error):/i.test(line) && !/XDG_RUNTIME_DIR/.test(line))
    .map((line) => line.replace(/^(warning|error):\s*/i, '').replace(/\.$/, ''));
  return [...new Set(reasons)].join('; ');
}
