import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { CaClient } from "../../src/agent/ca-client.js";
import { openStore } from "../../src/store/open.js";
import type { Agent, Binding, Owner } from "../../src/store/types.js";
import type { DeviceLine } from "./load-worker.js";
import { activateCredential, simAk, simEk } from "./sim-tpm.js";

// Bench set-up. Devices enrol the way real ones do: the EK hash is registered (as an MDM
// hook or `mayfly device register` would), then POST /v1/devices/activations and the
// software ActivateCredential. Owners, agents and bindings are seeded in the store (the
// owner API is not what is measured). `seedScale` fills the store with direct SQL.

const DAY = 86_400_000;

export async function enrolDevices(o: {
  url: string;
  caPem: string;
  dbPath: string;
  count: number;
  trustDomain: string;
  out: string;
  progress: (done: number) => void;
}): Promise<number> {
  const store = await openStore(o.dbPath, { durability: "normal" });
  const now = Date.now();
  const sims = Array.from({ length: o.count }, () => {
    const ek = simEk();
    return { ek, ak: simAk(ek) };
  });
  await store.tx(async (tx) => {
    for (const s of sims) {
      await tx.upsertEkRegistration({
        ekPubHash: s.ek.hash,
        source: "bench",
        note: "load-only simulated TPM",
        createdAt: now,
      });
    }
  });
  const client = new CaClient({ url: o.url, ca: o.caPem });
  const deviceIds: string[] = new Array(o.count);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < sims.length) {
      const i = next++;
      const s = sims[i]!;
      const ch = await client.startActivation({ ekPublic: s.ek.tpm2b, akPublic: s.ak.tpm2b });
      const secret = activateCredential(s.ek, s.ak.name, ch.credentialBlob, ch.encryptedSecret);
      deviceIds[i] = (await client.completeActivation(ch.activationId, secret)).deviceId;
      if (++done % 250 === 0) o.progress(done);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  client.close();

  const lines: string[] = [];
  await store.tx(async (tx) => {
    let owner: Owner | null = null;
    for (let i = 0; i < o.count; i++) {
      if (i % 8 === 0) {
        owner = {
          id: `bench-owner-${i / 8}`,
          issuer: "https://idp.bench",
          subject: `sub-${i / 8}`,
          email: `owner${i / 8}@bench.test`,
          displayName: `Bench owner ${i / 8}`,
          status: "active",
          manager: null,
          department: null,
          groups: [],
          createdAt: now,
          updatedAt: now,
        } as Owner;
        await tx.insertOwner(owner);
      }
      const agentId = `bench-${i}`;
      const agent: Agent = {
        id: agentId,
        name: `bench agent ${i}`,
        ownerId: owner!.id,
        deviceId: deviceIds[i]!,
        spiffeId: `spiffe://${o.trustDomain}/agent/${agentId}`,
        purpose: "load",
        profile: "default",
        status: "active",
        statusReason: null,
        expiresAt: now + 30 * DAY,
        lastIssuedAt: null,
        createdAt: now,
        updatedAt: now,
      } as Agent;
      await tx.insertAgent(agent);
      const binding: Binding = {
        agentId,
        ownerId: owner!.id,
        tokenIssuer: owner!.issuer,
        tokenSubject: owner!.subject,
        authTime: now,
        affirmedAt: now,
        expiresAt: now + 30 * DAY,
      };
      await tx.upsertBinding(binding);
      const s = sims[i]!;
      const line: DeviceLine = {
        agentId,
        akPkcs8: s.ak.privateKey.export({ format: "der", type: "pkcs8" }).toString("base64url"),
        akTpm2b: s.ak.tpm2b.toString("base64url"),
        akQn: s.ak.qualifiedName.toString("base64url"),
      };
      lines.push(JSON.stringify(line));
    }
  });
  await store.close();
  writeFileSync(o.out, `${lines.join("\n")}\n`);
  return o.count;
}

/**
 * Grows the store to `agents` agents and `certificates` certificate rows with direct SQL
 * (one prepared INSERT, 50,000 rows a transaction). Certificates are spread over the last
 * 7 days (within the default retention), one in 50 a day past it, for the tidy job.
 */
export function seedScale(o: {
  dbPath: string;
  agents: number;
  certificates: number;
  trustDomain: string;
  progress: (what: string) => void;
}): { agents: number; certificates: number; ms: number } {
  const t0 = performance.now();
  const db = new Database(o.dbPath);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 10000");
  const now = Date.now();
  const sample = db
    .prepare(
      "SELECT issuer_key_id, der, owner_id, device_id FROM certificates c JOIN agents a ON a.id = c.agent_id LIMIT 1",
    )
    .get() as { issuer_key_id: Buffer; der: Buffer; owner_id: string; device_id: string } | undefined;
  if (!sample) throw new Error("seedScale needs at least one issued certificate to copy");
  const haveAgents = (db.prepare("SELECT COUNT(*) AS n FROM agents").get() as { n: number }).n;
  const insAgent = db.prepare(
    "INSERT INTO agents (id, name, owner_id, device_id, spiffe_id, purpose, profile, status, expires_at, " +
      "last_issued_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'scale', 'default', 'active', ?, NULL, ?, ?)",
  );
  const scaleIds: string[] = [];
  const BATCH = 50_000;
  for (let i = haveAgents; i < o.agents; ) {
    db.transaction(() => {
      for (let k = 0; k < BATCH && i < o.agents; k++, i++) {
        const id = `scale-${i}`;
        insAgent.run(
          id,
          id,
          sample.owner_id,
          sample.device_id,
          `spiffe://${o.trustDomain}/agent/${id}`,
          now + 30 * DAY,
          now,
          now,
        );
        scaleIds.push(id);
      }
    })();
    o.progress(`agents ${i.toLocaleString()}`);
  }
  const ids = scaleIds.length > 0 ? scaleIds : ["bench-0"];
  const haveCerts = (db.prepare("SELECT COUNT(*) AS n FROM certificates").get() as { n: number }).n;
  const insCert = db.prepare(
    "INSERT INTO certificates (issuer_key_id, serial, agent_id, challenge_nonce, not_before, not_after, der, " +
      "fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  for (let i = haveCerts; i < o.certificates; ) {
    db.transaction(() => {
      for (let k = 0; k < BATCH && i < o.certificates; k++, i++) {
        // 98% within the retention, 2% past it: a steady state plus a backlog for the tidy job.
        const created =
          i % 50 === 0
            ? now - 8 * DAY - Math.floor(Math.random() * DAY)
            : now - Math.floor(Math.random() * 6.9 * DAY);
        const serial = randomBytes(16);
        serial[0] = (serial[0]! & 0x7f) | 0x40;
        insCert.run(
          sample.issuer_key_id,
          serial,
          ids[i % ids.length],
          randomBytes(32),
          created - 30_000,
          created + 300_000,
          sample.der,
          randomBytes(32),
          created,
        );
      }
    })();
    o.progress(`certificates ${i.toLocaleString()}`);
  }
  const agents = (db.prepare("SELECT COUNT(*) AS n FROM agents").get() as { n: number }).n;
  const certificates = (db.prepare("SELECT COUNT(*) AS n FROM certificates").get() as { n: number }).n;
  db.close();
  return { agents, certificates, ms: performance.now() - t0 };
}
