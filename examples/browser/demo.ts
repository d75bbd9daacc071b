/**
 * `npm run demo`: builds the page (examples/browser/build.ts) and serves it on http://127.0.0.1:8080/
 * (`npm run demo -- 9000` for another port) until Ctrl-C.
 */
import { buildDemo } from './build.js';
import { serveDirectory } from './serve.js';

const port = Number(process.argv[2] ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`usage: npm run demo -- [port]; got '${process.argv[2]}'\n`);
  process.exit(2);
}
const outDir = await buildDemo();
const server = await serveDirectory(outDir, port);
process.stdout.write(`demo page: ${server.url} (built into ${outDir}; Ctrl-C stops the server)\n`);
