#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerAgent } from "./commands/agent-commands.js";
import { registerAgents } from "./commands/agents.js";
import { registerAudit } from "./commands/audit-verify.js";
import { registerCa } from "./commands/ca-rotate.js";
import { registerConfigCheck } from "./commands/config-check.js";
import { registerDevice } from "./commands/device.js";
import { registerHook } from "./commands/hook.js";
import { registerInit } from "./commands/init.js";
import { registerRoot } from "./commands/root.js";
import { registerServe } from "./commands/serve.js";
import { EXIT, EXIT_HELP } from "./exit-codes.js";
import { reportError } from "./output.js";

const program = new Command();
program
  .name("mayfly")
  .description("Mayfly: an ephemeral certificate authority for software agents")
  .version("0.1.0")
  .addHelpText("after", EXIT_HELP)
  .showHelpAfterError()
  .exitOverride();

registerServe(program);
registerInit(program);
registerConfigCheck(program);
registerDevice(program);
registerHook(program);
registerAudit(program);
registerAgents(program);
registerRoot(program);
registerCa(program);
registerAgent(program);
for (const c of program.commands) {
  c.exitOverride();
  for (const sub of c.commands) sub.exitOverride();
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    const benign =
      err.code === "commander.helpDisplayed" ||
      err.code === "commander.version" ||
      err.code === "commander.help";
    process.exitCode = benign ? EXIT.ok : EXIT.usage;
  } else {
    process.exitCode = reportError(err, process.argv.includes("--json"));
  }
}
