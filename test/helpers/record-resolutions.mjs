// Registers a module-resolution hook that appends every resolved URL to the file named by RECORD_RESOLUTIONS
// (one per line), so a test can see which packages an import pulls in.
import { register } from 'node:module';

register('./record-resolutions-hook.mjs', import.meta.url);
