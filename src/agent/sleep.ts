import { setTimeout as wait } from "node:timers/promises";
import type { Sleep } from "./renewer.js";

/** The real timer, for composition roots (the CLI, an application using the library). */
export const realSleep: Sleep = (ms, signal) =>
  wait(ms, undefined, { signal }).then(
    () => undefined,
    () => undefined,
  );
