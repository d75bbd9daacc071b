/**
 * `doctor`: each backend's diagnosis, with every absence simulated through the probes it asks the machine
 * (packages, CUDA libraries, the WebGPU adapter search, wasm features), and once for real on this machine.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { diagnoseBackends, type DoctorProbes } from '../src/backend/doctor/index.js';
import { findCudaLibraries } from '../src/backend/doctor/cuda.js';
import { wasmFeatures } from '../src/backend/doctor/wasm-features.js';
import { enableRelaxedSimd } from '../src/backend/wasm/gemm/relaxed-simd.js';
import { initBackend } from '../src/backend/index.js';
import type { AdapterSearch } from '../src/backend/webgpu/find.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

const noAdapter: AdapterSearch = { found: false, reason: 'no Vulkan loader', missing: 'no Vulkan loader (libvulkan.so.1; Debian/Ubuntu: apt-get install libvulkan1)' };
const adapter = (software: boolean): AdapterSearch => ({
  found: true,
  adapter: { name: software ? 'llvmpipe' : 'NVIDIA H200', vendor: software ? 'mesa' : 'nvidia', architecture: '', software, limits: { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 } },
  webgpuPath: '/x',
  tfjsWebgpuPath: '/y',
});

/** A machine with the wasm package and nothing else, unless told otherwise. */
function machine(overrides: Partial<DoctorProbes> & { packages?: string[] } = {}): Partial<DoctorProbes> {
  const packages = overrides.packages ?? ['@tensorflow/tfjs-backend-wasm'];
  return {
    resolvePackage: (name) => (packages.includes(name) ? `/node_modules/${name}/index.js` : null),
    cudaLibraries: () => ({ cudart: [], cudnn: [] }),
    wasmFeatures: () => ({ simd: true, relaxedSimd: true, threads: true }),
    relaxedSimdForOurKernels: async () => 'engine',
    webgpu: async () => noAdapter,
    nodeVersion: '20.20.2',
    ...overrides,
  };
}

const of = (report: Awaited<ReturnType<typeof diagnoseBackends>>, name: string) => report.backends.find((b) => b.backend === name)!;

describe('doctor, each absence simulated', () => {
  it('no native TensorFlow package: tensorflow is missing, with the install line; auto falls back to wasm', async () => {
    const report = await diagnoseBackends(machine());
    expect(of(report, 'tensorflow')).toMatchObject({ available: false, fix: expect.stringContaining('npm install @tensorflow/tfjs-node-gpu@4.22.0') });
    expect(report.auto).toEqual({ backend: 'wasm', why: 'no native TensorFlow; webgpu: no Vulkan loader' });
  });

  it('tfjs-node-gpu with CUDA 12 only: named as unusable (it would run on the CPU silently), with what it needs and what is there', async () => {
    const report = await diagnoseBackends(machine({ packages: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm'], cudaLibraries: () => ({ cudart: ['12', '12.4.127'], cudnn: ['9'] }) }));
    const tf = of(report, 'tensorflow');
    expect(tf.available).toBe(false);
    expect(tf.detail).toContain('needs libcudart.so.11.0 and libcudnn.so.8');
    expect(tf.detail).toContain('found CUDA runtime 12, 12.4.127, cuDNN 9');
    expect(tf.fix).toContain('CUDA 11.2 and cuDNN 8.1');
    expect(report.auto.backend).toBe('wasm');
  });

  it('tfjs-node-gpu with CUDA 11.0 and cuDNN 8: available, and auto picks it', async () => {
    const report = await diagnoseBackends(machine({ packages: ['@tensorflow/tfjs-node-gpu'], cudaLibraries: () => ({ cudart: ['11.0'], cudnn: ['8', '8.1.1'] }) }));
    expect(of(report, 'tensorflow').available).toBe(true);
    expect(report.auto.backend).toBe('tensorflow');
  });

  it('webgpu: the search says what is missing; a hardware adapter is picked by auto, a software one is not', async () => {
    const none = await diagnoseBackends(machine());
    expect(of(none, 'webgpu')).toMatchObject({ available: false, detail: 'no Vulkan loader', fix: expect.stringContaining('apt-get install libvulkan1') });
    const hardware = await diagnoseBackends(machine({ webgpu: async () => adapter(false) }));
    expect(of(hardware, 'webgpu').detail).toContain('hardware');
    expect(of(hardware, 'webgpu').detail).toContain('buffers up to 4 GiB, bindings up to 2 GiB');
    expect(hardware.auto.backend).toBe('webgpu');
    const software = await diagnoseBackends(machine({ webgpu: async () => adapter(true) }));
    expect(of(software, 'webgpu').available).toBe(true);
    expect(of(software, 'webgpu').fix).toContain('slower than wasm');
    expect(software.auto).toEqual({ backend: 'wasm', why: 'no native TensorFlow; webgpu has only a software adapter' });
  });

  it('wasm: a missing package leaves cpu to auto; no relaxed SIMD is named with its fix for this Node', async () => {
    const noWasm = await diagnoseBackends(machine({ packages: [] }));
    expect(of(noWasm, 'wasm')).toMatchObject({ available: false, fix: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0' });
    expect(noWasm.auto.backend).toBe('cpu');
    const noRelaxed = await diagnoseBackends(machine({ wasmFeatures: () => ({ simd: true, relaxedSimd: false, threads: true }), relaxedSimdForOurKernels: async () => null }));
    expect(of(noRelaxed, 'wasm').detail).toContain('relaxed SIMD no (our GEMM kernels use plain SIMD)');
    expect(of(noRelaxed, 'wasm')).toMatchObject({ available: true, fix: 'relaxed SIMD (fused multiply-add): node --experimental-wasm-relaxed-simd, or Node ≥ 22' });
    expect(of(noRelaxed, 'wasm').facts).toMatchObject({ heapLimitBytes: 4 * 2 ** 30 });
    // Node 20: not in the engine's defaults, but the flag set at run time gives it to our kernels: nothing to fix.
    const byFlag = await diagnoseBackends(machine({ wasmFeatures: () => ({ simd: true, relaxedSimd: false, threads: true }), relaxedSimdForOurKernels: async () => 'flag set at run time' }));
    expect(of(byFlag, 'wasm').fix).toBeUndefined();
    expect(of(byFlag, 'wasm').detail).toContain('relaxed SIMD yes (flag set at run time), used by our GEMM kernels');
    const noSimd = await diagnoseBackends(machine({ wasmFeatures: () => ({ simd: false, relaxedSimd: false, threads: false }) }));
    expect(of(noSimd, 'wasm').available).toBe(false);
  });

  it('CUDA versions are read from the libraries in the loader path', () => {
    const dirs: Record<string, string[]> = { '/a': ['libcudart.so', 'libcudart.so.11.0', 'libfoo.so'], '/b': ['libcudnn.so.8', 'libcudnn.so.8.1.1', 'libcudart.so.11.0'] };
    expect(findCudaLibraries(['/a', '/b', '/missing'], (d) => dirs[d] ?? [])).toEqual({ cudart: ['11.0'], cudnn: ['8', '8.1.1'] });
  });
});

describe('doctor on this machine', () => {
  it("this Node's wasm has SIMD and threads (relaxed SIMD only behind a flag on Node 20)", () => {
    const features = wasmFeatures();
    expect(features.simd).toBe(true);
    expect(features.threads).toBe(true);
    if (Number(process.versions.node.split('.')[0]) === 20 && !process.execArgv.includes('--experimental-wasm-relaxed-simd')) expect(features.relaxedSimd).toBe(false);
  });

  it('relaxed SIMD reaches our kernels without a command-line flag (Node 20: the V8 flag set at run time)', async () => {
    const source = await enableRelaxedSimd();
    expect(source).not.toBeNull();
    expect(wasmFeatures().relaxedSimd).toBe(true);
    const report = await diagnoseBackends();
    expect(of(report, 'wasm').detail).toContain('used by our GEMM kernels');
  });

  it("what it says auto picks is what initBackend('auto') picks", async () => {
    const report = await diagnoseBackends();
    expect(report.backends.map((b) => b.backend)).toEqual(['tensorflow', 'webgpu', 'wasm', 'cpu', 'meta', 'meta-wasm']);
    const picked = await initBackend('auto');
    expect(report.auto.backend).toBe(picked);
    await initBackend('cpu');
  });

  it('with Vulkan pointed nowhere (VK_DRIVER_FILES), webgpu is unavailable with a fix line; --json is one document', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CLI, 'doctor', '--json'], { env: { ...process.env, VK_DRIVER_FILES: '/nonexistent/icd.json' }, timeout: 120_000 });
    const report = JSON.parse(stdout) as { backends: Array<{ backend: string; available: boolean; fix?: string }>; auto: { backend: string } };
    const gpu = report.backends.find((b) => b.backend === 'webgpu')!;
    expect(gpu.available).toBe(false);
    expect(gpu.fix).toMatch(/Vulkan driver|not installed/);
    expect(report.auto.backend).not.toBe('webgpu');
  });
});
