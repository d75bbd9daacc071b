/**
 * The library's only way to speak. It never writes to the console by itself: callers pass a logger
 * (or `silentLogger`), and the CLI passes one that writes to stderr.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** Drops every message. The default everywhere in the library. */
export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
};

/** Writes each message as one line to stderr (what the CLI uses). */
export const stderrLogger: Logger = {
  info: (message) => process.stderr.write(`${message}\n`),
  warn: (message) => process.stderr.write(`warning: ${message}\n`),
};
