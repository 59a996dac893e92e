/**
 * A/B of the issuance routes' two paths (the hand-written handler and the express app) in
 * ONE server process, interleaved, counting the server's own CPU (process.cpuUsage) per
 * issuance: a machine shared with other benchmarks moves wall-clock throughput far more
 * than it moves CPU time per request. The load (challenge + certificate with the test-only
 * evidence format, fresh key per issuance) runs in a child process and is not counted.
 *
 *   node --import tsx scripts/bench/http-ab.ts [--seconds 6] [--rounds 4] [--conc 32] [--agents 64]
 */
import { fork } from "node:child_process";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { attest, newAgentKey, startTestCa } from "../../test/helpers/test-ca.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "6" },
    rounds: { type: "string", default: "4" },
    conc: { type: "string", default: "32" },
    agents: { type: "string", default: "64" },
    child: { type: "boolean", default: false },
  },
});

if (values.child) {
  // The load: told a url, CA and agents, runs each phase it is sent and reports the count.
  const { request, Agent } = await import("node:https");
  const { createPrivateKey } = await import("node:crypto");
  let setup: { url: string; ca: string; agents: { agentId: string; deviceKeyPem: string }[] };
  const post = (agent: InstanceType<typeof Agent>, path: string, body: unknown) =>
    new Promise<{ status: number; json: unknown }>((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(body));
      const req = request(
        `${setup.url}${path}`,
        {
          method: "POST",
          agent,
          headers: { "content-type": "application/json", "content-length": payload.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              json: JSON.parse(Buffer.concat(chunks).toString("utf8")),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  process.on("message", async (m: { setup?: typeof setup; run?: number }) => {
    if (m.setup) {
      setup = m.setup;
      process.send!({ ready: true });
      return;
    }
    const until = Date.now() + m.run! * 1000;
    const agent = new Agent({ keepAlive: true, maxSockets: Number(values.conc), ca: setup.ca });
    let done = 0;
    let failed = 0;
    const keys = setup.agents.map((a) => ({ ...a, deviceKey: createPrivateKey(a.deviceKeyPem) }));
    await Promise.all(
      Array.from({ length: Number(values.conc) }, async (_, i) => {
        let n = i;
        while (Date.now() < until) {
          const a = keys[n++ % keys.length]!;
          const k = await newAgentKey();
          const ch = await post(agent, `/v1/agents/${a.agentId}/challenges`, {});
          const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
          const res = await post(agent, `/v1/agents/${a.agentId}/certificates`, {
            csr: k.csrDer.toString("base64url"),
            nonce: nonce.toString("base64url"),
            attestation: attest(a.deviceKey, nonce, k.spki),
          });
          if (res.status === 201) done++;
          else failed++;
        }
      }),
    );
    agent.destroy();
    process.send!({ done, failed });
  });
} else {
  let fast = true;
  const ca = await startTestCa(undefined, {
    log: pino({ level: "info" }, process.stderr),
    listener: { fastPath: () => fast },
  });
  const agents = [];
  for (let i = 0; i < Number(values.agents); i++) {
    const a = await ca.seedAgent();
    agents.push({
      agentId: a.agentId,
      deviceKeyPem: a.deviceKey.export({ type: "pkcs8", format: "pem" }) as string,
    });
  }
  const child = fork(new URL(import.meta.url).pathname, ["--child", "--conc", values.conc!], {
    execArgv: ["--import", "tsx"],
  });
  const next = () => new Promise<{ done: number; failed: number }>((r) => child.once("message", r as never));
  child.send({ setup: { url: ca.url, ca: ca.rootPem, agents } });
  await next();
  const phase = async (mode: "fast" | "express", seconds: number) => {
    fast = mode === "fast";
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    child.send({ run: seconds });
    const { done, failed } = await next();
    const cpu = process.cpuUsage(cpu0);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    return { mode, done, failed, iss: done / wall, cpuUs: (cpu.user + cpu.system) / done };
  };
  await phase("express", 3);
  await phase("fast", 3); // warm-up, both paths
  const rows = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const m of r % 2 === 0 ? (["express", "fast"] as const) : (["fast", "express"] as const)) {
      const row = await phase(m, Number(values.seconds));
      rows.push(row);
      console.log(
        `${row.mode.padEnd(8)} ${row.iss.toFixed(0).padStart(5)} iss/s  server cpu ${row.cpuUs.toFixed(0).padStart(5)} µs/iss  (${row.done} ok, ${row.failed} failed)`,
      );
    }
  }
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const e = med(rows.filter((r) => r.mode === "express").map((r) => r.cpuUs));
  const f = med(rows.filter((r) => r.mode === "fast").map((r) => r.cpuUs));
  console.log(
    `median server CPU per issuance: express ${e.toFixed(0)} µs, fast ${f.toFixed(0)} µs, saved ${(e - f).toFixed(0)} µs`,
  );
  child.kill();
  await ca.close();
}
