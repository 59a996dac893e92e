import type { Command } from "commander";
import { intermediateStatus, rotationTick, type TickResult } from "../../authority/rotation-intermediate.js";
import { CONFIG_HELP, runCaCommand } from "./ca-open.js";

type Opts = { config?: string; json?: boolean };

function tickText(r: TickResult): string {
  const lines = r.done.map((d) => `done: ${d.step} ${d.id ?? ""} at ${d.at}`);
  if (lines.length === 0) lines.push("nothing due");
  for (const w of r.waiting)
    lines.push(`waiting: ${w.step} ${w.id ?? ""} ${w.at ? `at ${w.at}` : ""} (${w.reason})`);
  return `${lines.join("\n")}\n`;
}

export function registerCa(program: Command): void {
  const ca = program
    .command("ca")
    .description("intermediate CA rotation (the server also runs it on a timer)");
  ca.command("rotate")
    .description(
      "run the rotation tick now: take every intermediate step that is due (prepare, canary, activate, retire)",
    )
    .option("--tick", "one tick (the default; accepted for scripts)")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action((opts: Opts) => runCaCommand(opts, (d) => rotationTick(d), tickText));
  ca.command("status")
    .description("the intermediates, their schedule and what each next step waits for")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action((opts: Opts) =>
      runCaCommand(
        opts,
        (d) => intermediateStatus(d),
        (s) => {
          const lines = s.intermediates.map(
            (i) =>
              `intermediate ${i.slot.padEnd(8)} ${i.id}  until ${i.notAfter}  last leaf ${i.lastLeafNotAfter ?? "-"}`,
          );
          for (const a of s.due) lines.push(`due: ${a.kind} ${"id" in a ? a.id : ""}`);
          for (const w of s.waiting)
            lines.push(`waiting: ${w.step} ${w.id ?? ""} ${w.at ? `at ${w.at}` : ""} (${w.reason})`);
          return `${lines.join("\n")}\n`;
        },
      ),
    );
}
