export { duration, formatDuration, parseDuration } from "./duration.js";
export {
  type ConfigIssue,
  configError,
  loadConfig,
  parseConfigText,
  parseListen,
  type ResolvedConfig,
  validateConfig,
} from "./load.js";
export { type Config, type ConfigInput, configSchema, type Profile, type SecretRef } from "./schema.js";
