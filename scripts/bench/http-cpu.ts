/**
 * Server CPU per issuance of two source trees side by side (e.g. main and a branch), and of
 * a bare node https server answering the same-sized bodies (the floor under node's own
 * http/tls), interleaved A B A B ... on one machine. Each server is its own process
 * (test/helpers/test-ca.ts of its tree: HTTPS, SQLite in a temp dir, test-only evidence
 * format); one load process drives each in turn with the agent library's CaClient
 * (challenge, then certificate, keep-alive), and the server reports its own CPU
 * (process.cpuUsage, all threads) for each window. Keys and CSRs come from a pool made at
 * start so the load's CPU stays small; the attestation is signed per nonce.
 *
 *   node --import tsx scripts/bench/http-cpu.ts --tree /work/main --tree . [--bare]
 *        [--seconds 5] [--rounds 6] [--conc 16] [--agents 64] [--profile DIR]
 *
 * As production runs (compiled, no tsx; tsx's output names every closure at creation):
 *   bash scripts/bench/build-tree.sh /work/main /tmp/b-main; bash scripts/bench/build-tree.sh . /tmp/b-this
 *   node /tmp/b-this/scripts/bench/http-cpu.js --tree /tmp/b-main --tree /tmp/b-this
 *
 * --stub runs each tree's issuance handler (fast-issuance.ts) in front of canned answers
 * instead of the whole server: its HTTP layer alone, against --bare.
 *
 * --profile DIR writes one V8 CPU profile per tree of its measured windows only
 * (summarise with scripts/bench/profile-top.ts DIR).
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process";
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    tree: { type: "string", multiple: true, default: [] },
    bare: { type: "boolean", default: false },
    stub: { type: "boolean", default: false },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "6" },
    conc: { type: "string", default: "16" },
    agents: { type: "string", default: "64" },
    keys: { type: "string", default: "256" },
    profile: { type: "string" },
    // internal
    serve: { type: "string" },
    load: { type: "boolean", default: false },
  },
});
const self = new URL(import.meta.url).pathname;

interface Setup {
  url: string;
  ca: string;
  agents: { agentId: string; deviceKeyPem: string }[];
}

/** A throw-away P-256 TLS certificate for 127.0.0.1 (the bare and stub servers). */
function selfSigned(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "bare-tls-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  const out = { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
  rmSync(dir, { recursive: true });
  return out;
}

/** A certificate answer of a real one's shape and size (random PEM bodies). */
function cannedCertificate() {
  const pem = (n: number) =>
    `-----BEGIN CERTIFICATE-----\n${(
      randomBytes(Math.ceil((n * 3) / 4))
        .toString("base64")
        .match(/.{1,64}/g) ?? []
    ).join("\n")}\n-----END CERTIFICATE-----\n`;
  return {
    certificate: pem(760),
    chain: [pem(720)],
    serial: randomBytes(16).toString("hex"),
    notBefore: new Date().toISOString(),
    notAfter: new Date().toISOString(),
    renewAfter: new Date().toISOString(),
    bundle: pem(640) + pem(720),
  };
}

/** Agents for a server that checks nothing (bare, stub): ids and throw-away device keys. */
function fakeAgents(): Setup["agents"] {
  return Array.from({ length: Number(values.agents) }, (_, i) => ({
    agentId: `agent-${i + 1}`,
    deviceKeyPem: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    }) as string,
  }));
}

/** The parent's protocol with a server process: mark -> cpu, profile start/stop. */
function serveControl(profileName: string | null, close: () => Promise<void>) {
  let session: import("node:inspector").Session | null = null;
  let profiling = false;
  process.on(
    "message",
    async (m: { mark?: boolean; close?: boolean; profile?: "start" | "stop"; dir?: string }) => {
      if (m.close) {
        await close();
        process.exit(0);
      } else if (m.mark) {
        const u = process.cpuUsage();
        process.send!({ cpu: u.user + u.system });
      } else if (m.profile === "start" && profileName) {
        if (!session) {
          const { Session } = await import("node:inspector");
          session = new Session();
          session.connect();
          await new Promise<void>((r) => session!.post("Profiler.enable", () => r()));
          await new Promise<void>((r) =>
            session!.post("Profiler.setSamplingInterval", { interval: 200 }, () => r()),
          );
        }
        if (!profiling) await new Promise<void>((r) => session!.post("Profiler.start", () => r()));
        profiling = true;
        process.send!({ ok: true });
      } else if (m.profile === "stop") {
        if (session && profiling) {
          // Stopping and restarting between windows: each window's profile is merged by
          // profile-top.ts (it sums every .cpuprofile in the folder).
          const profile = await new Promise<unknown>((r) =>
            session!.post("Profiler.stop", (_e, p) => r((p as { profile: unknown }).profile)),
          );
          profiling = false;
          writeFileSync(join(m.dir!, `${profileName}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
        }
        process.send!({ ok: true });
      }
    },
  );
}

if (values.serve && values.serve !== "bare" && !values.serve.startsWith("stub:")) {
  // A Mayfly server from the given tree.
  const root = resolve(values.serve);
  // A tree as checked out (run under tsx) or compiled (tsc --outDir, run by plain node: what
  // production runs, without tsx's per-closure name helpers).
  const helper = join(root, "test/helpers/test-ca.js");
  const { startTestCa } = (await import(
    existsSync(helper) ? helper : helper.replace(/js$/, "ts")
  )) as typeof import("../../test/helpers/test-ca.js");
  const { pino } = await import("pino");
  const ca = await startTestCa(undefined, { log: pino({ level: "info" }, process.stderr) });
  const agents = [];
  for (let i = 0; i < Number(values.agents); i++) {
    const a = await ca.seedAgent();
    agents.push({
      agentId: a.agentId,
      deviceKeyPem: a.deviceKey.export({ type: "pkcs8", format: "pem" }) as string,
    });
  }
  serveControl(root.split("/").filter(Boolean).pop()!, () => ca.close());
  process.send!({ setup: { url: ca.url, ca: ca.rootPem, agents } satisfies Setup });
} else if (values.serve?.startsWith("stub:")) {
  // The tree's issuance handler (fast-issuance.ts) in front of canned answers: its HTTP
  // layer alone (routing, body, response), against the bare floor.
  const root = resolve(values.serve.slice(5));
  const ext = existsSync(join(root, "src/server/fast-issuance.js")) ? "js" : "ts";
  const { fastIssuance } = (await import(
    join(root, `src/server/fast-issuance.${ext}`)
  )) as typeof import("../../src/server/fast-issuance.js");
  const { pino } = await import("pino");
  const { createServer } = await import("node:https");
  const { key, cert } = selfSigned();
  const answer = cannedCertificate();
  // Handlers answer JSON text since issuance-answer.ts; objects before.
  const text = existsSync(join(root, `src/server/routes/issuance-answer.${ext}`));
  const out = (o: object) => (text ? JSON.stringify(o) : o);
  const fast = fastIssuance(
    { config: { server: { bodyLimitBytes: 65536 } }, log: pino({ level: "info" }) } as never,
    {
      challenge: async () =>
        out({ nonce: randomBytes(32).toString("base64url"), expiresAt: new Date().toISOString() }),
      certificate: async () => out(answer),
    } as never,
  );
  const server = createServer({ key, cert, minVersion: "TLSv1.2" }, (req, res) => {
    if (!fast(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  serveControl(
    `stub-${root.split("/").filter(Boolean).pop()}`,
    () => new Promise<void>((r) => server.close(() => r())),
  );
  process.send!({
    setup: {
      url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
      ca: cert.toString(),
      agents: fakeAgents(),
    } satisfies Setup,
  });
} else if (values.serve === "bare") {
  // The floor: node https, keep-alive, the same TLS key type, each POST's body read whole
  // and answered with a fixed body of a Mayfly answer's size, in one write.
  const { createServer } = await import("node:https");
  const { key, cert } = selfSigned();
  const certBody = JSON.stringify(cannedCertificate());
  const server = createServer({ key, cert, minVersion: "TLSv1.2" }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const body = req.url!.endsWith("/challenges")
        ? JSON.stringify({
            nonce: randomBytes(32).toString("base64url"),
            expiresAt: new Date().toISOString(),
          })
        : certBody;
      res.writeHead(201, {
        "cache-control": "no-store",
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const agents = fakeAgents();
  serveControl("bare", () => new Promise<void>((r) => server.close(() => r())));
  process.send!({ setup: { url: `https://127.0.0.1:${port}`, ca: cert.toString(), agents } satisfies Setup });
} else if (values.load) {
  const { CaClient } = await import("../../src/agent/ca-client.js");
  const { newAgentKey } = await import("../../test/helpers/test-ca.js");
  const pool: { spki: Buffer; csr: string }[] = [];
  for (let i = 0; i < Number(values.keys); i++) {
    const k = await newAgentKey();
    pool.push({ spki: k.spki, csr: k.csrDer.toString("base64url") });
  }
  const targets: { client: InstanceType<typeof CaClient>; agents: { agentId: string; key: KeyObject }[] }[] =
    [];
  let n = 0;
  process.on("message", async (m: { setup?: Setup; run?: { target: number; seconds: number } }) => {
    if (m.setup) {
      targets.push({
        client: new CaClient({ url: m.setup.url, ca: m.setup.ca }),
        agents: m.setup.agents.map((a) => ({ agentId: a.agentId, key: createPrivateKey(a.deviceKeyPem) })),
      });
      process.send!({ ready: true });
      return;
    }
    const { target, seconds } = m.run!;
    const { client, agents } = targets[target]!;
    const until = Date.now() + seconds * 1000;
    let done = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: Number(values.conc) }, async () => {
        while (Date.now() < until) {
          const i = n++;
          const a = agents[i % agents.length]!;
          const k = pool[i % pool.length]!;
          try {
            const ch = await client.challenge(a.agentId);
            const extraData = createHash("sha256").update(ch.nonce).update(k.spki).digest();
            await client.request("POST", `/v1/agents/${a.agentId}/certificates`, {
              csr: k.csr,
              nonce: ch.nonce.toString("base64url"),
              attestation: {
                format: "test-signed",
                extraData: extraData.toString("base64url"),
                signature: sign("sha256", extraData, a.key).toString("base64url"),
              },
            });
            done++;
          } catch (e) {
            if (failed++ === 0) console.error(e);
          }
        }
      }),
    );
    process.send!({ done, failed });
  });
  process.send!({ ready: true });
} else {
  const trees = (values.tree ?? []).map((t) => resolve(t));
  const leaf = (t: string) => t.split("/").filter(Boolean).pop()!;
  const specs = [...trees.map((t) => (values.stub ? `stub:${t}` : t)), ...(values.bare ? ["bare"] : [])];
  const names = [
    ...trees.map((t) => (values.stub ? `stub-${leaf(t)}` : leaf(t))),
    ...(values.bare ? ["bare"] : []),
  ];
  if (specs.length === 0) throw new Error("give at least one --tree DIR or --bare");
  if (values.profile) mkdirSync(values.profile, { recursive: true });
  const reply = <T>(c: ChildProcess) =>
    new Promise<T>((r, reject) => {
      const exit = (code: number | null) => reject(new Error(`a bench process exited (${code}) mid-run`));
      c.once("exit", exit);
      c.once("message", (m) => {
        c.off("exit", exit);
        r(m as T);
      });
    });
  const servers: ChildProcess[] = [];
  const load = fork(self, ["--load", "--conc", values.conc!, "--keys", values.keys!]);
  await reply(load);
  for (const spec of specs) {
    const s = fork(self, ["--serve", spec, "--agents", values.agents!]);
    const { setup } = await reply<{ setup: Setup }>(s);
    servers.push(s);
    load.send({ setup });
    await reply(load);
  }
  const phase = async (i: number, seconds: number, measured: boolean) => {
    const s = servers[i]!;
    if (measured && values.profile) {
      s.send({ profile: "start" });
      await reply(s);
    }
    s.send({ mark: true });
    const c0 = (await reply<{ cpu: number }>(s)).cpu;
    const t0 = process.hrtime.bigint();
    load.send({ run: { target: i, seconds } });
    const { done, failed } = await reply<{ done: number; failed: number }>(load);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    s.send({ mark: true });
    const c1 = (await reply<{ cpu: number }>(s)).cpu;
    if (measured && values.profile) {
      s.send({ profile: "stop", dir: values.profile });
      await reply(s);
    }
    return { name: names[i]!, done, failed, rate: done / wall, cpuUs: (c1 - c0) / done };
  };
  for (let i = 0; i < servers.length; i++) await phase(i, 3, false); // warm-up
  const rows: Awaited<ReturnType<typeof phase>>[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const order = servers.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      const row = await phase(i, Number(values.seconds), true);
      rows.push(row);
      console.log(
        `${row.name.padEnd(10)} ${row.rate.toFixed(0).padStart(5)} iss/s  server cpu ${row.cpuUs.toFixed(0).padStart(5)} µs/iss  (${row.done} ok, ${row.failed} failed)`,
      );
    }
  }
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  console.log("median server CPU per issuance:");
  for (const name of names) {
    const xs = rows.filter((r) => r.name === name).map((r) => r.cpuUs);
    console.log(
      `  ${name.padEnd(10)} ${med(xs).toFixed(0).padStart(5)} µs  (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`,
    );
  }
  // A shared machine moves every window's CPU per issuance together, over seconds: the
  // difference within a round (adjacent windows) cancels most of that.
  const per = (name: string) => rows.filter((r) => r.name === name).map((r) => r.cpuUs);
  const first = per(names[0]!);
  for (const name of names.slice(1)) {
    const d = per(name).map((x, i) => x - first[i]!);
    const ratio = per(name).map((x, i) => x / first[i]!);
    console.log(
      `  ${name} - ${names[0]}: median of per-round differences ${med(d).toFixed(0)} µs, of ratios ${med(ratio).toFixed(3)}; lower in ${d.filter((x) => x < 0).length} of ${d.length} rounds`,
    );
  }
  load.kill();
  for (const s of servers) {
    s.send({ close: true });
    s.once("exit", () => {});
  }
}
