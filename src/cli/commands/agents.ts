import type { Command } from "commander";

// `mayfly agents --zombies` and `mayfly agents sweep --json` both work: the parent's
// options are merged into each subcommand's (commander gives an option defined on both
// to the parent).
const merged = <T>(cmd: Command): T => cmd.optsWithGlobals() as T;

import { createTransfer } from "../../authority/transfers.js";
import { countZombies, listZombies, sweepAgents } from "../../authority/zombies.js";
import type { ResolvedConfig } from "../../config/index.js";
import { MayflyError } from "../../errors/index.js";
import { setAgentState } from "../../owners/lifecycle.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import type { Store } from "../../store/store.js";
import type { Agent } from "../../store/types.js";
import { EXIT } from "../exit-codes.js";
import { openConfiguredStore, resolveConfig } from "../open.js";
import { printJson } from "../output.js";

// Operator commands for agents and owners. Whoever can open the data directory is an
// administrator (issue 4: "for the CLI on the CA host, access to the data directory");
// every change is an audit event with actor "cli".

const ACTOR = "cli";
const CONFIG_HELP = "configuration file (default: $MAYFLY_CONFIG or embedded defaults)";
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

async function withStore<T>(config: string | undefined, f: (store: Store, rc: ResolvedConfig) => Promise<T>) {
  const rc = await resolveConfig(config);
  const store = await openConfiguredStore(rc);
  try {
    return await f(store, rc);
  } finally {
    await store.close();
  }
}

function agentLine(a: Agent): string {
  const reason = a.statusReason ? ` (${a.statusReason})` : "";
  return `${a.id}  ${a.status}${reason}  owner=${a.ownerId}  device=${a.deviceId}  expires=${iso(a.expiresAt)}  ${JSON.stringify(a.name)}\n`;
}

async function mustGetAgent(store: Store, id: string): Promise<Agent> {
  const a = await store.tx((tx) => tx.getAgent(id));
  if (!a) throw new MayflyError("agent.not_found", `no agent ${id}`);
  return a;
}

async function listAction(opts: { zombies?: boolean; owner?: string; config?: string; json?: boolean }) {
  await withStore(opts.config, async (store) => {
    if (opts.zombies) {
      const zombies = await listZombies({ store, clock: systemClock });
      const rows = opts.owner ? zombies.filter((z) => z.ownerId === opts.owner) : zombies;
      if (opts.json) printJson({ ok: true, counts: countZombies(rows), zombies: rows });
      else {
        for (const z of rows) {
          process.stdout.write(
            `${z.agentId}  ${z.kinds.join(",")}  ${z.status}  owner=${z.ownerId}  device=${z.deviceId}  ${JSON.stringify(z.name)}\n`,
          );
        }
        process.stdout.write(`${rows.length} zombie agent(s)\n`);
      }
      return;
    }
    const agents: Agent[] = await store.tx(async (tx) => {
      if (opts.owner) return tx.listAgentsByOwner(opts.owner);
      const all: Agent[] = [];
      let afterId: string | null = null;
      for (;;) {
        const page = await tx.listAgents({ afterId, limit: 500 });
        all.push(...page);
        if (page.length < 500) return all;
        afterId = page[page.length - 1]!.id;
      }
    });
    if (opts.json) printJson({ ok: true, agents });
    else for (const a of agents) process.stdout.write(agentLine(a));
  });
  process.exitCode = EXIT.ok;
}

export function registerAgents(program: Command): void {
  const agents = program
    .command("agents")
    .description("agents and their owners: list, zombies, sweep, suspend, resume, retire, transfer")
    .option(
      "--zombies",
      "list agents whose owner is gone, dormant agents, agents past purpose or on unenrolled devices",
    )
    .option("--owner <ownerId>", "only this owner's agents")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action((_opts: unknown, cmd: Command) => listAction(merged(cmd)));

  agents
    .command("list")
    .description("list agents (all, one owner's, or only zombies)")
    .option("--zombies", "only agents whose owner is gone, dormant, past purpose or on unenrolled devices")
    .option("--owner <ownerId>", "only this owner's agents")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action((_opts: unknown, cmd: Command) => listAction(merged(cmd)));

  agents
    .command("sweep")
    .description(
      "make idle agents dormant and retire dormant or expired ones now (the server also does this on a timer)",
    )
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = merged<{ config?: string; json?: boolean }>(cmd);
      await withStore(opts.config, async (store, rc) => {
        const r = await sweepAgents({ store, clock: systemClock, config: rc.config }, ACTOR);
        if (opts.json) printJson({ ok: true, ...r, at: iso(r.at) });
        else process.stdout.write(`swept: ${r.dormant.length} now dormant, ${r.retired.length} retired\n`);
      });
      process.exitCode = EXIT.ok;
    });

  const change = (
    name: string,
    description: string,
    apply: (store: Store, agent: Agent, note: string | null) => Promise<void>,
  ) =>
    agents
      .command(`${name} <agentId>`)
      .description(description)
      .option("--note <text>", "why, for the audit log")
      .option("-c, --config <file>", CONFIG_HELP)
      .option("--json", "print the result as JSON")
      .action(async (agentId: string, _opts: unknown, cmd: Command) => {
        const opts = merged<{ note?: string; config?: string; json?: boolean }>(cmd);
        await withStore(opts.config, async (store) => {
          await apply(store, await mustGetAgent(store, agentId), opts.note ?? null);
          const a = await mustGetAgent(store, agentId);
          if (opts.json)
            printJson({ ok: true, agentId, status: a.status, statusReason: a.statusReason ?? null });
          else process.stdout.write(`agent ${agentId} is ${a.status}\n`);
        });
        process.exitCode = EXIT.ok;
      });

  change("suspend", "hold an agent (only an administrator can resume it)", (store, agent, note) =>
    store.tx(async (tx) => {
      const a = (await tx.getAgent(agent.id))!;
      if (a.status === "retired") throw new MayflyError("agent.retired", `agent ${a.id} is retired`);
      await setAgentState(tx, systemClock, a, "suspended", "admin", ACTOR, { note });
    }),
  );
  change("resume", "make a suspended, quarantined or dormant agent active again", (store, agent, note) =>
    store.tx(async (tx) => {
      const a = (await tx.getAgent(agent.id))!;
      if (a.status === "retired") throw new MayflyError("agent.retired", `agent ${a.id} is retired`);
      await setAgentState(tx, systemClock, a, "active", null, ACTOR, { note });
    }),
  );
  change("retire", "retire an agent for good", (store, agent, note) =>
    store.tx(async (tx) => {
      const a = (await tx.getAgent(agent.id))!;
      await setAgentState(tx, systemClock, a, "retired", "admin", ACTOR, { note });
    }),
  );

  agents
    .command("transfer <agentId>")
    .description(
      "offer an agent to another owner, who accepts with a fresh login (POST /v1/transfers/{id}/accept)",
    )
    .requiredOption("--to <ownerId>", "the owner who is to accept it")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (agentId: string, _opts: unknown, cmd: Command) => {
      const opts = merged<{ to: string; config?: string; json?: boolean }>(cmd);
      await withStore(opts.config, async (store, rc) => {
        const t = await store.tx(async (tx) => {
          const a = await tx.getAgent(agentId);
          if (!a) throw new MayflyError("agent.not_found", `no agent ${agentId}`);
          return createTransfer(
            tx,
            { clock: systemClock, random: systemRandom, config: rc.config },
            a,
            opts.to,
            ACTOR,
          );
        });
        if (opts.json)
          printJson({
            ok: true,
            transferId: t.id,
            agentId,
            toOwnerId: t.toOwnerId,
            expiresAt: iso(t.expiresAt),
          });
        else
          process.stdout.write(
            `transfer ${t.id} offered to ${t.toOwnerId}, open until ${iso(t.expiresAt)}\n`,
          );
      });
      process.exitCode = EXIT.ok;
    });

  const owners = program.command("owners").description("the people who own agents");
  owners
    .command("list")
    .description("list owners with their status")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (opts: { config?: string; json?: boolean }) => {
      await withStore(opts.config, async (store) => {
        const list = await store.tx((tx) => tx.listOwners());
        if (opts.json) printJson({ ok: true, owners: list });
        else {
          for (const o of list) {
            process.stdout.write(`${o.id}  ${o.status}  ${o.email ?? "-"}  ${o.issuer} ${o.subject}\n`);
          }
        }
      });
      process.exitCode = EXIT.ok;
    });
}
