import { type Logger, pino } from "pino";

/**
 * JSON logs. Redaction is a second line of defence: code never passes keys, tokens
 * or passphrases to the logger in the first place.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: "mayfly" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          "req.headers.authorization",
          "headers.authorization",
          "*.passphrase",
          "passphrase",
          "*.token",
          "token",
          "*.privateKey",
          "privateKey",
          "*.secret",
          "secret",
        ],
        censor: "[redacted]",
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
