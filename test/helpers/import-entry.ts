/** Imports the module named on the command line (a package entry such as 'efficient-densenet-tfjs/train'). */
await import(process.argv[2] ?? 'efficient-densenet-tfjs');
