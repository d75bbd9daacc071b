/**
 * What @tensorflow/tfjs-node-gpu 4.22 needs of the machine, and what is there. Its libtensorflow 2.9 is built
 * against CUDA 11.2 and cuDNN 8.1 and opens `libcudart.so.11.0` and `libcudnn.so.8` by name; with other
 * versions (CUDA 12 is today's default) it does not fail, it runs on the CPU without a word (tfjs issues
 * 8362, 8269, 8505). So the versions are read from the libraries' file names, before anything is loaded.
 */
import { existsSync, readdirSync } from 'node:fs';
import { delimiter } from 'node:path';

export const CUDA_NEEDS = { cudart: 'libcudart.so.11.0', cudnn: 'libcudnn.so.8' } as const;

const SYSTEM_DIRS = ['/usr/local/cuda/lib64', '/usr/local/cuda-11.2/lib64', '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu'];

/** The directories the dynamic loader would search: LD_LIBRARY_PATH first, then the usual places. */
export function libraryDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...(env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean), ...SYSTEM_DIRS];
}

export interface CudaLibraries {
  /** Versions found, from the file names (libcudart.so.12 → '12'); empty when none. */
  cudart: string[];
  cudnn: string[];
}

/** The CUDA runtime and cuDNN versions present in `dirs` (listDir: injectable for tests). */
export function findCudaLibraries(dirs: string[], listDir: (dir: string) => string[] = safeList): CudaLibraries {
  const versions = (prefix: string) =>
    [...new Set(dirs.flatMap((dir) => listDir(dir)).filter((f) => f.startsWith(`${prefix}.so.`)).map((f) => f.slice(`${prefix}.so.`.length)))].sort();
  return { cudart: versions('libcudart'), cudnn: versions('libcudnn') };
}

function safeList(dir: string): string[] {
  try {
    return existsSync(dir) ? readdirSync(dir) : [];
  } catch {
    return [];
  }
}

/** Whether the versions tfjs-node-gpu opens are among those found. */
export function cudaSatisfied(found: CudaLibraries): boolean {
  return found.cudart.includes(CUDA_NEEDS.cudart.replace('libcudart.so.', '')) && found.cudnn.some((v) => v === '8' || v.startsWith('8.'));
}
