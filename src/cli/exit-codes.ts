/** Documented in README.md and in `mayfly --help`. */
export const EXIT = {
  ok: 0,
  /** A check ran and found a problem: invalid config, a broken audit chain. */
  checkFailed: 1,
  /** The command line itself was wrong. */
  usage: 2,
  /** The command could not do its work: unreadable files, store or key failures. */
  error: 3,
} as const;

export const EXIT_HELP = `
Exit codes:
  0  success
  1  a check ran and failed (config check found errors, audit verify found tampering)
  2  usage error (unknown command or option, missing argument)
  3  runtime error (unreadable file, store or key failure); the message says which
`;
