import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { parseConfigText } from "../../config/index.js";
import { EXIT } from "../exit-codes.js";
import { printJson } from "../output.js";

export function registerConfigCheck(program: Command): void {
  const config = program.command("config").description("configuration tools");
  config
    .command("check")
    .description("validate a configuration file and report every error at once, with its path")
    .argument("<file>", "YAML configuration file")
    .option("--json", "print the result as JSON")
    .action(async (file: string, opts: { json?: boolean }) => {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (e) {
        const detail = `cannot read ${file}: ${(e as Error).message}`;
        if (opts.json) printJson({ ok: false, file, issues: [{ path: "", message: detail }] });
        else process.stderr.write(`mayfly: ${detail}\n`);
        process.exitCode = EXIT.error;
        return;
      }
      const r = parseConfigText(text);
      if (opts.json) {
        printJson(r.ok ? { ok: true, file } : { ok: false, file, issues: r.issues });
      } else if (r.ok) {
        process.stdout.write(`${file}: ok\n`);
      } else {
        process.stdout.write(`${file}: ${r.issues.length} error(s)\n`);
        for (const i of r.issues) process.stdout.write(`  ${i.path || "(root)"}: ${i.message}\n`);
      }
      process.exitCode = r.ok ? EXIT.ok : EXIT.checkFailed;
    });
}
