/**
 * `doctor`: which backends this machine can run and why not, what `auto` would pick, and one line to fix each
 * that is missing — asked before any backend is loaded (nothing here registers a backend or loads native
 * code in this process: packages are resolved, not imported; Dawn is asked in a child process).
 */
import { createRequire } from 'node:module';
import { BACKEND_TRAITS } from '../traits.js';
import { findWebGPUAdapter, type AdapterSearch } from '../webgpu/find.js';
import { describeAdapter } from '../webgpu/index.js';
import { CUDA_NEEDS, cudaSatisfied, findCudaLibraries, libraryDirs, type CudaLibraries } from './cuda.js';
import { enableRelaxedSimd, type RelaxedSimdSource } from '../wasm/gemm/relaxed-simd.js';
import { wasmFeatures, type WasmFeatures } from './wasm-features.js';

export interface BackendDiagnosis {
  backend: string;
  available: boolean;
  /** One line: what was found, or what is missing. */
  detail: string;
  /** One line to fix what is missing (a command or a setting); absent when nothing is. */
  fix?: string;
  /** What was measured, for --json: versions, adapter limits, wasm features. */
  facts?: Record<string, unknown>;
}

export interface DoctorReport {
  node: string;
  backends: BackendDiagnosis[];
  /** What initBackend('auto') would choose here, and why. */
  auto: { backend: string; why: string };
}

/** Everything doctor asks of the machine; tests replace pieces to simulate an absence. */
export interface DoctorProbes {
  /** The path a package resolves to from this library, or null. */
  resolvePackage: (name: string) => string | null;
  cudaLibraries: () => CudaLibraries;
  wasmFeatures: () => WasmFeatures;
  /** Whether our GEMM kernels get relaxed SIMD, and how (initBackend sets Node 20's V8 flag at run time, as this does). */
  relaxedSimdForOurKernels: () => Promise<RelaxedSimdSource>;
  webgpu: () => Promise<AdapterSearch>;
  nodeVersion: string;
}

const NATIVE = { gpu: '@tensorflow/tfjs-node-gpu', cpu: '@tensorflow/tfjs-node', version: '4.22.0' } as const;
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';

function defaultProbes(): DoctorProbes {
  const require = createRequire(import.meta.url);
  return {
    resolvePackage: (name) => {
      try {
        return require.resolve(name);
      } catch {
        return null;
      }
    },
    cudaLibraries: () => findCudaLibraries(libraryDirs()),
    wasmFeatures,
    relaxedSimdForOurKernels: enableRelaxedSimd,
    webgpu: findWebGPUAdapter,
    nodeVersion: process.versions.node,
  };
}

function tensorflow(p: DoctorProbes): BackendDiagnosis {
  const gpu = p.resolvePackage(NATIVE.gpu);
  const cpu = p.resolvePackage(NATIVE.cpu);
  if (gpu) {
    const found = p.cudaLibraries();
    const facts = { package: NATIVE.gpu, needs: CUDA_NEEDS, found };
    const seen = `found CUDA runtime ${found.cudart.join(', ') || 'none'}, cuDNN ${found.cudnn.join(', ') || 'none'}`;
    if (cudaSatisfied(found)) return { backend: 'tensorflow', available: true, detail: `${NATIVE.gpu} with CUDA 11 and cuDNN 8 (${seen})`, facts };
    return {
      backend: 'tensorflow',
      available: false,
      detail: `${NATIVE.gpu} needs ${CUDA_NEEDS.cudart} and ${CUDA_NEEDS.cudnn} (CUDA 11.2, cuDNN 8.1); ${seen} — without them it runs on the CPU silently`,
      fix: 'install CUDA 11.2 and cuDNN 8.1 beside your driver (or use --backend webgpu on the GPU; docs/gpu.md)',
      facts,
    };
  }
  if (cpu) return { backend: 'tensorflow', available: true, detail: `${NATIVE.cpu} (native TensorFlow on the CPU)`, facts: { package: NATIVE.cpu } };
  return {
    backend: 'tensorflow',
    available: false,
    detail: `neither ${NATIVE.gpu} nor ${NATIVE.cpu} is installed (their install script downloads libtensorflow)`,
    fix: `npm install ${NATIVE.gpu}@${NATIVE.version} (CUDA 11.2 + cuDNN 8.1) or ${NATIVE.cpu}@${NATIVE.version}`,
  };
}

function webgpu(search: AdapterSearch): BackendDiagnosis {
  if (!search.found) return { backend: 'webgpu', available: false, detail: search.reason, fix: search.missing };
  const { adapter } = search;
  return {
    backend: 'webgpu',
    available: true,
    detail: `${describeAdapter(adapter)}${adapter.limits ? `; buffers up to ${gib(adapter.limits.maxBufferSize)}, bindings up to ${gib(adapter.limits.maxStorageBufferBindingSize)}` : ''}`,
    ...(adapter.software ? { fix: 'a software adapter is correct but slower than wasm: for speed, a GPU with its Vulkan (Linux), Metal or D3D12 driver' } : {}),
    facts: { ...adapter },
  };
}

async function wasm(p: DoctorProbes): Promise<BackendDiagnosis> {
  if (!p.resolvePackage(WASM_PACKAGE)) return { backend: 'wasm', available: false, detail: `${WASM_PACKAGE} is not installed`, fix: `npm install ${WASM_PACKAGE}@4.22.0` };
  const features = p.wasmFeatures();
  const heap = BACKEND_TRAITS.wasm.heapLimitBytes;
  const facts: Record<string, unknown> = { ...features, heapLimitBytes: heap };
  if (!features.simd) {
    return { backend: 'wasm', available: false, detail: 'this engine has no WebAssembly SIMD, which tfjs-backend-wasm needs for speed', fix: 'Node ≥ 16.4 (any current Node)', facts };
  }
  const major = Number(p.nodeVersion.split('.')[0]);
  const ours = await p.relaxedSimdForOurKernels();
  facts.relaxedSimdInOurKernels = ours;
  const missing = [
    ...(ours ? [] : [`relaxed SIMD (fused multiply-add): ${major >= 22 ? 'this Node lacks it' : 'node --experimental-wasm-relaxed-simd, or Node ≥ 22'}`]),
  ];
  const relaxed = ours === null ? 'no (our GEMM kernels use plain SIMD)'
    : `yes${ours === 'engine' ? '' : ` (${ours})`}, used by our GEMM kernels`;
  return {
    backend: 'wasm',
    available: true,
    detail: `SIMD yes, relaxed SIMD ${relaxed}, threads ${features.threads ? 'yes (tfjs-wasm runs one thread in Node: use workers)' : 'no'}, heap up to ${gib(heap!)}`,
    ...(missing.length > 0 ? { fix: missing.join('; ') } : {}),
    facts,
  };
}

function gib(bytes: number): string {
  return `${+(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** The same order as initBackend('auto'): tensorflow → webgpu on a hardware adapter → wasm → cpu. */
function autoChoice(by: Map<string, BackendDiagnosis>, search: AdapterSearch): DoctorReport['auto'] {
  if (by.get('tensorflow')!.available) return { backend: 'tensorflow', why: by.get('tensorflow')!.detail };
  if (search.found && !search.adapter.software) return { backend: 'webgpu', why: `no native TensorFlow; ${describeAdapter(search.adapter)}` };
  const gpuNote = search.found ? `webgpu has only a software adapter` : `webgpu: ${search.reason}`;
  if (by.get('wasm')!.available) return { backend: 'wasm', why: `no native TensorFlow; ${gpuNote}` };
  return { backend: 'cpu', why: `no native TensorFlow; ${gpuNote}; wasm: ${by.get('wasm')!.detail}` };
}

/** Diagnoses every backend; `probes` replaces what the machine would be asked (tests). */
export async function diagnoseBackends(probes: Partial<DoctorProbes> = {}): Promise<DoctorReport> {
  const p = { ...defaultProbes(), ...probes };
  const search = await p.webgpu();
  const backends: BackendDiagnosis[] = [
    tensorflow(p),
    webgpu(search),
    await wasm(p),
    { backend: 'cpu', available: true, detail: 'pure JavaScript (always there; slow for convolutions)' },
    { backend: 'meta', available: true, detail: "shapes only: exact memory of cpu's and webgpu's steps, no compute" },
    { backend: 'meta-wasm', available: true, detail: "shapes only: exact memory of wasm's steps, no compute" },
  ];
  const by = new Map(backends.map((b) => [b.backend, b]));
  return { node: p.nodeVersion, backends, auto: autoChoice(by, search) };
}
