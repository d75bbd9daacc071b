/**
 * Is there a WebGPU adapter, and if not, what is missing and how to get it: the packages, a Vulkan loader,
 * a Vulkan driver, or a driver Dawn accepts (Debian 12's Mesa 22.3 is not one; Mesa ≥ 23 is).
 */
import { existsSync, readdirSync } from 'node:fs';
import { delimiter } from 'node:path';
import { resolveWebGPUPackages, summarizeAdapter, WEBGPU_PACKAGES, type AdapterSummary } from './adapter.js';
import { probeAdapter } from './probe.js';

export type AdapterSearch =
  | { found: true; adapter: AdapterSummary; webgpuPath: string; tfjsWebgpuPath: string }
  | { found: false; /** One line: what is missing and how to get it. */ missing: string; /** What is missing, in a few words. */ reason: string };

/** The software adapter for a machine without a GPU (Debian 12; other distributions: any Mesa ≥ 23). */
const MESA_HINT =
  "a GPU's Vulkan driver, or Mesa >= 23 for a software adapter (Debian 12: add bookworm-backports to the apt sources, then apt-get install -t bookworm-backports mesa-vulkan-drivers; see docs/gpu.md)";

export async function findWebGPUAdapter(): Promise<AdapterSearch> {
  const packages = resolveWebGPUPackages();
  if ('missing' in packages) {
    return { found: false, reason: `${packages.missing} not installed`, missing: `package ${packages.missing} is not installed (npm install ${WEBGPU_PACKAGES.join(' ')})` };
  }
  let probe;
  try {
    probe = await probeAdapter(packages.webgpu);
  } catch (error) {
    return { found: false, reason: 'Dawn failed to start', missing: `${error instanceof Error ? error.message : String(error)} (reinstall: npm install ${WEBGPU_PACKAGES[0]})` };
  }
  if (probe.adapter) {
    return { found: true, adapter: summarizeAdapter(probe.adapter), webgpuPath: packages.webgpu, tfjsWebgpuPath: packages.tfjsWebgpu };
  }
  const dawnSays = probe.diagnostics ? ` (Dawn: ${probe.diagnostics})` : '';
  const { reason, missing } = whatIsMissing();
  return { found: false, reason, missing: `${missing}${dawnSays}` };
}

/** On Linux Dawn runs on Vulkan: name the first missing piece; elsewhere (Metal, D3D12) only the GPU's driver. */
function whatIsMissing(): { reason: string; missing: string } {
  if (process.platform !== 'linux') {
    return { reason: 'no adapter', missing: 'no WebGPU adapter: needs a GPU with a Metal (macOS) or Direct3D 12 (Windows) driver' };
  }
  if (!hasVulkanLoader()) {
    return {
      reason: 'no Vulkan loader',
      missing: `no Vulkan loader (libvulkan.so.1; Debian/Ubuntu: apt-get install libvulkan1) and so no WebGPU adapter; also needs ${MESA_HINT}`,
    };
  }
  const drivers = vulkanDrivers();
  if (drivers.length === 0) return { reason: 'no Vulkan driver', missing: `no Vulkan driver and so no WebGPU adapter: needs ${MESA_HINT}` };
  return {
    reason: `no adapter from the Vulkan drivers here (${drivers.join(', ')})`,
    missing: `no WebGPU adapter: the Vulkan drivers here (${drivers.join(', ')}) offer Dawn none; needs ${MESA_HINT}`,
  };
}

const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib64', '/lib'];

function hasVulkanLoader(): boolean {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean), ...LIBRARY_DIRS];
  return dirs.some((dir) => existsSync(`${dir}/libvulkan.so.1`));
}

/**
 * The Vulkan driver manifests the loader would read: those named by VK_DRIVER_FILES / VK_ICD_FILENAMES
 * (which replace the search) that exist, else the ones in the standard directories.
 */
function vulkanDrivers(): string[] {
  const named = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (named !== undefined) return named.split(delimiter).filter((file) => file && existsSync(file)).map(driverName);
  const dirs = ['/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/etc/vulkan/icd.d'];
  return dirs.flatMap((dir) => (existsSync(dir) ? readdirSync(dir).filter((file) => file.endsWith('.json')) : [])).map(driverName);
}

/** "lvp_icd.x86_64.json" → "lvp". */
function driverName(file: string): string {
  return (file.split('/').pop() ?? file).replace(/_icd.*$|\.json$/, '');
}
