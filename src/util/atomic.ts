import { importNodeBuiltin } from './node.js';

/**
 * Writes a file so that readers see either the old content or the whole new one, never a torn write:
 * the data goes to a temporary file beside the target, is flushed, then renamed over it. Node only (its
 * modules are loaded at call time so that browser bundles of the modules using this stay clean).
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const { promises: fs } = await importNodeBuiltin<typeof import('node:fs')>('node:fs', `writing '${target}'`);
  const path = await importNodeBuiltin<typeof import('node:path')>('node:path', `writing '${target}'`);
  const dir = path.dirname(target);
  await fs.mkdir(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await fs.open(temp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(temp, target);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}
