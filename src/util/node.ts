/**
 * The library runs in Node and in browsers (a bundle of the main entry or `/weights`). What only Node has —
 * its built-in modules, `process` — is reached through here, at call time, so that a browser bundler never
 * meets a `node:` import and a browser never runs Node's code paths.
 */

interface NodeProcess {
  versions?: { node?: string };
  env?: Record<string, string | undefined>;
}

function nodeProcess(): NodeProcess | undefined {
  const candidate = (globalThis as { process?: NodeProcess }).process;
  // Bundlers sometimes define a `process` shim in browsers; only Node's has `versions.node`.
  return typeof candidate?.versions?.node === 'string' ? candidate : undefined;
}

/** True in Node (and its worker threads); false in a browser page or web worker. */
export function isNode(): boolean {
  return nodeProcess() !== undefined;
}

/** An environment variable in Node; undefined in a browser, which has none. */
export function environmentVariable(name: string): string | undefined {
  return nodeProcess()?.env?.[name];
}

/**
 * Imports a Node built-in module (`node:fs`, `node:path`, …) when a Node-only function runs. The specifier
 * reaches `import()` as a runtime value on purpose: esbuild, webpack, Vite and Rollup leave such an import
 * alone instead of failing the browser bundle on it. `purpose` names what needs Node, for the error a
 * browser gets.
 */
export async function importNodeBuiltin<T>(specifier: `node:${string}`, purpose: string): Promise<T> {
  if (!isNode()) throw new Error(`${purpose} needs Node (${specifier}); it is not available in a browser`);
  return (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as T;
}
