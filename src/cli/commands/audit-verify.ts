import type { Command } from "commander";
import { verifyAuditChain } from "../../audit/index.js";
import { EXIT } from "../exit-codes.js";
import { openConfiguredStore, resolveConfig } from "../open.js";
import { printJson } from "../output.js";

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident audit log");
  audit
    .command("verify")
    .description("verify the hash chain end to end; names the first bad event (exit 1) if any")
    .option("-c, --config <file>", "configuration file (default: $MAYFLY_CONFIG or embedded defaults)")
    .option("--json", "print the result as JSON")
    .action(async (opts: { config?: string; json?: boolean }) => {
      const rc = await resolveConfig(opts.config);
      const store = await openConfiguredStore(rc);
      try {
        const r = await verifyAuditChain(store);
        if (opts.json) printJson(r);
        else if (r.ok) process.stdout.write(`audit chain ok: ${r.count} events\n`);
        else
          process.stdout.write(`audit chain BROKEN at event ${r.firstBadSeq}: ${r.reason} (${r.detail})\n`);
        process.exitCode = r.ok ? EXIT.ok : EXIT.checkFailed;
      } finally {
        await store.close();
      }
    });
}
