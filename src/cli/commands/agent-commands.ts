import type { Command } from "commander";
import { registerAgentEnrol } from "./agent-enrol.js";
import { registerAgentRun } from "./agent-run.js";

/** `mayfly agent enrol | run`: the agent side, on the host with the TPM. */
export function registerAgent(program: Command): void {
  const agent = program
    .command("agent")
    .description("the agent side: enrol this device's TPM once, then keep an agent's certificate fresh");
  registerAgentEnrol(agent);
  registerAgentRun(agent);
}
