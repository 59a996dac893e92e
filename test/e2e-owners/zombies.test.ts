import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mayfly } from "../helpers/cli.js";
import { issueVia, startTestCa, type TestAgent, type TestCa } from "../helpers/test-ca.js";

// No zombie agents: idle agents become dormant, then retired; agents past their purpose
// are retired; the zombie report and gauges name the rest. Time is the CA's injected
// clock, moved by the test; the server's own timer runs the sweep too.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let ca: TestCa;
beforeAll(async () => {
  ca = await startTestCa(`
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
agents:
  sweepInterval: 1s
`);
});
afterAll(async () => {
  await ca?.close();
});

/** An agent with a long purpose and binding, so only idleness can stop it. */
function longLived(over: Parameters<TestCa["seedAgent"]>[0] = {}) {
  const now = ca.clock.now();
  return ca.seedAgent({
    ...over,
    agent: { expiresAt: now + 300 * DAY, ...over.agent },
    binding: { expiresAt: now + 300 * DAY, ...over.binding },
  });
}

const agentOf = (a: TestAgent) => ca.running.store.tx((tx) => tx.getAgent(a.agentId));

async function issueCode(a: TestAgent) {
  const { res } = await issueVia(ca, a);
  return res.status === 201 ? "issued" : (res.json as { code: string }).code;
}

describe("zombie sweep", () => {
  it("dormant after 24 h without issuance, retired 30 days later; each change audited by the sweeper", async () => {
    const idle = await longLived();
    const busy = await longLived();
    expect(await issueCode(busy)).toBe("issued");
    ca.clock.advance(23 * HOUR);
    expect(await issueCode(busy)).toBe("issued"); // renewing keeps it alive
    ca.clock.advance(2 * HOUR);
    const r = await ca.running.sweep();
    expect(r.dormant).toContain(idle.agentId);
    expect(r.dormant).not.toContain(busy.agentId);
    expect(await agentOf(idle)).toMatchObject({ status: "dormant", statusReason: "inactivity" });
    expect(await agentOf(busy)).toMatchObject({ status: "active" });
    const { res } = await issueVia(ca, idle);
    expect(res.json).toMatchObject({ code: "agent.inactive" });
    expect((res.json as { detail: string }).detail).toMatch(/dormant \(inactivity\)/);

    ca.clock.advance(30 * DAY);
    const r2 = await ca.running.sweep();
    expect(r2.retired).toContainEqual({ agentId: idle.agentId, reason: "inactivity" });
    expect(await agentOf(idle)).toMatchObject({ status: "retired", statusReason: "inactivity" });
    expect(await issueCode(idle)).toBe("agent.retired");
    const events = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 100_000));
    const mine = events.filter((e) => e.subject === `agent:${idle.agentId}` && e.actor === "sweeper");
    expect(mine.map((e) => e.type)).toEqual(["agent.dormant", "agent.retire"]);
    expect(mine[0]!.data).toMatchObject({ from: "active", to: "dormant", reason: "inactivity" });
  });

  it("retires an agent at its purpose end, whatever its state", async () => {
    const now = ca.clock.now();
    const a = await ca.seedAgent({ agent: { expiresAt: now + HOUR }, binding: { expiresAt: now + HOUR } });
    const q = await ca.seedAgent({
      agent: { expiresAt: now + HOUR, status: "quarantined", statusReason: "owner.moved" },
      binding: { expiresAt: now + HOUR },
    });
    ca.clock.advance(HOUR);
    const r = await ca.running.sweep();
    expect(r.retired).toEqual(
      expect.arrayContaining([
        { agentId: a.agentId, reason: "expired" },
        { agentId: q.agentId, reason: "expired" },
      ]),
    );
  });

  it("the server's timer sweeps by itself; the zombie gauges follow", async () => {
    const a = await longLived();
    const gone = await longLived({ owner: { status: "deprovisioned" } });
    const unenrolled = await longLived({ device: { status: "unenrolled" } });
    ca.clock.advance(25 * HOUR);
    const deadline = Date.now() + 5_000;
    while ((await agentOf(a))?.status !== "dormant" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await agentOf(a))?.status).toBe("dormant");
    await ca.running.sweep();
    const metrics = (await ca.call("/metrics")).text;
    const gauge = (kind: string) =>
      Number(new RegExp(`mayfly_zombie_agents\\{kind="${kind}"\\} (\\d+)`).exec(metrics)?.[1]);
    expect(gauge("dormant")).toBeGreaterThanOrEqual(3);
    expect(gauge("owner_gone")).toBeGreaterThanOrEqual(1);
    expect(gauge("device_unenrolled")).toBeGreaterThanOrEqual(1);
    expect(gauge("past_purpose")).toBeGreaterThanOrEqual(0);
    expect(await agentOf(gone)).toMatchObject({ status: "dormant" });
    expect(await agentOf(unenrolled)).toMatchObject({ status: "dormant" });
  });
});

describe("mayfly agents (CLI on the CA host)", () => {
  // A CA of its own, on the default sweep interval and an unmoved clock: the timer
  // above would otherwise sweep these agents first.
  let ca: TestCa;
  beforeAll(async () => {
    ca = await startTestCa();
  });
  afterAll(async () => {
    await ca?.close();
  });
  const issueCode = async (a: TestAgent) => {
    const { res } = await issueVia(ca, a);
    return res.status === 201 ? "issued" : (res.json as { code: string }).code;
  };

  it("lists zombies, sweeps, suspends, resumes, retires and offers transfers; every change audited as cli", async () => {
    const env = { MAYFLY_DATA_DIR: join(ca.dir, "data") };
    // The CLI runs on the system clock: an agent whose last sign of life was two days ago.
    const twoDaysAgo = Date.now() - 2 * DAY;
    const old = await ca.seedAgent({
      agent: { createdAt: twoDaysAgo, lastIssuedAt: twoDaysAgo, expiresAt: Date.now() + 60 * DAY },
      binding: { affirmedAt: twoDaysAgo, expiresAt: Date.now() + 60 * DAY },
    });
    const fresh = await ca.seedAgent({ agent: { expiresAt: Date.now() + 60 * DAY } });
    const other = await ca.seedAgent();

    const sweep = await mayfly(["agents", "sweep", "--json"], env);
    expect(sweep.code, sweep.stderr).toBe(0);
    const swept = JSON.parse(sweep.stdout) as { dormant: string[] };
    expect(swept.dormant).toContain(old.agentId);
    expect(swept.dormant).not.toContain(fresh.agentId);

    const z = await mayfly(["agents", "--zombies", "--json"], env);
    expect(z.code, z.stderr).toBe(0);
    const zombies = JSON.parse(z.stdout) as { zombies: { agentId: string; kinds: string[] }[] };
    expect(zombies.zombies.find((x) => x.agentId === old.agentId)?.kinds).toContain("dormant");

    const suspend = await mayfly(
      ["agents", "suspend", fresh.agentId, "--note", "incident 42", "--json"],
      env,
    );
    expect(JSON.parse(suspend.stdout)).toMatchObject({ status: "suspended", statusReason: "admin" });
    expect(await issueCode(fresh)).toBe("agent.inactive");
    const resume = await mayfly(["agents", "resume", fresh.agentId, "--json"], env);
    expect(JSON.parse(resume.stdout)).toMatchObject({ status: "active" });
    const t = await mayfly(["agents", "transfer", fresh.agentId, "--to", other.ownerId, "--json"], env);
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ toOwnerId: other.ownerId });
    const retire = await mayfly(["agents", "retire", fresh.agentId, "--json"], env);
    expect(JSON.parse(retire.stdout)).toMatchObject({ status: "retired" });

    const owners = await mayfly(["owners", "list", "--json"], env);
    expect((JSON.parse(owners.stdout) as { owners: { id: string }[] }).owners.map((x) => x.id)).toContain(
      other.ownerId,
    );
    const events = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 100_000));
    const cli = events
      .filter((e) => e.actor === "cli" && e.subject === `agent:${fresh.agentId}`)
      .map((e) => e.type);
    expect(cli).toEqual(["agent.suspend", "agent.resume", "transfer.offer", "agent.retire"]);

    const h = await mayfly(["agents", "sweep", "--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: mayfly agents sweep /);
  });
});
