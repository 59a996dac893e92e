import type { Command } from "commander";
import {
  type RootStatus,
  rootActivate,
  rootPrepare,
  rootRetire,
  rootStatus,
} from "../../authority/rotation-root.js";
import { CONFIG_HELP, runCaCommand } from "./ca-open.js";

type Opts = { config?: string; json?: boolean };

function statusText(s: RootStatus): string {
  const lines = [`root rotation: ${s.phase}${s.alreadyDone ? " (this step was already taken)" : ""}`];
  for (const r of s.roots)
    lines.push(`  root ${r.slot.padEnd(8)} ${r.id}  ${r.subject}  until ${r.notAfter}`);
  if (s.rotationId) {
    lines.push(`  rotation ${s.rotationId}: ${s.from} -> ${s.to}`);
    lines.push(
      `    prepared   ${s.preparedAt ?? "-"}${s.canaried ? " (canary passed)" : " (canary pending)"}`,
    );
    lines.push(
      `    activate   allowed from ${s.activateAllowedAt ?? "-"}; done ${s.activatedAt ?? "-"}${s.forced ? " (forced)" : ""}`,
    );
    lines.push(`    retire     allowed from ${s.retireAllowedAt ?? "-"}; done ${s.retiredAt ?? "-"}`);
    for (const i of s.oldIntermediates) {
      lines.push(
        `    old-root intermediate ${i.id} (${i.slot}), last leaf expires ${i.lastLeafNotAfter ?? "-"}`,
      );
    }
  }
  if (s.next)
    lines.push(
      `next: ${s.next.step}${s.next.waitsFor ? `, waiting for ${s.next.waitsFor}` : ", allowed now"}`,
    );
  return `${lines.join("\n")}\n`;
}

export function registerRoot(program: Command): void {
  const root = program
    .command("root")
    .description(
      "the root rotation ceremony: prepare, activate, retire, status (each step journaled and audited)",
    );
  const sub = (name: string, description: string) =>
    root
      .command(name)
      .description(description)
      .option("-c, --config <file>", CONFIG_HELP)
      .option("--json", "print the result as JSON");

  sub(
    "prepare",
    "create the next root and its first intermediate, cross-signed both ways with the current root, published in the bundle as next",
  ).action((opts: Opts) => runCaCommand(opts, (d) => rootPrepare(d), statusText));
  sub("activate", "make the next root current (refused until it has been published for rotation.propagation)")
    .option("--force", "activate before the propagation period has passed (audited as forced)")
    .action((opts: Opts & { force?: boolean }) =>
      runCaCommand(opts, (d) => rootActivate(d, { force: opts.force === true }), statusText),
    );
  sub(
    "retire",
    "remove the previous root from the bundle (refused while a certificate that chains to it is unexpired)",
  ).action((opts: Opts) => runCaCommand(opts, (d) => rootRetire(d), statusText));
  sub("status", "the rotation timeline and what the next step waits for").action((opts: Opts) =>
    runCaCommand(opts, (d) => rootStatus(d), statusText),
  );
}
