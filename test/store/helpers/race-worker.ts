// One "replica" for sqlite-processes.test.ts: its own process and connection on a
// shared database file. It says "ready", waits for "go" on stdin so that all replicas
// start together, races to redeem one challenge and to store the challenge key (and, if given, one TPM activation), appends
// audit events, and reports.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { appendAudit } from "../../../src/audit/chain.js";
import { isMayflyError } from "../../../src/errors/index.js";
import { ManualClock } from "../../../src/runtime/clock.js";
import { SqliteStore } from "../../../src/store/sqlite/index.js";

const [path, nonceHex, appendsArg, name, activationId] = process.argv.slice(2);
if (!path || !nonceHex || !appendsArg || !name)
  throw new Error("usage: race-worker PATH NONCE_HEX APPENDS NAME [ACTIVATION_ID]");
const store = new SqliteStore({ path, busyTimeoutMs: 30_000 });
const clock = new ManualClock(1_750_000_000_000);

process.stdout.write("ready\n");
await once(process.stdin, "data");

// A redemption is the insert of a certificate carrying the nonce (each replica its own
// serial); the unique nonce lets exactly one in.
const der = Buffer.from(`certificate of ${name}`);
const won = await store
  .tx((tx) =>
    tx.insertCertificate({
      issuerKeyId: Buffer.alloc(20, 1),
      serial: createHash("sha256").update(name).digest().subarray(0, 16),
      agentId: "a1",
      challengeNonce: Buffer.from(nonceHex, "hex"),
      notBefore: clock.now() - 30_000,
      notAfter: clock.now() + 300_000,
      der,
      fingerprint: createHash("sha256").update(der).digest(),
      createdAt: clock.now() + 1,
    }),
  )
  .then(
    () => true,
    (e: unknown) => {
      if (isMayflyError(e) && e.code === "challenge.consumed") return false;
      throw e;
    },
  );
// Every replica offers its own random key; all must end up with the one stored.
const secret = (await store.tx((tx) => tx.ensureSecret("challenge-key", randomBytes(32)))).toString("hex");
// The device id names the replica, so the stored outcome shows whose attempt won.
const activationWon = activationId
  ? await store.tx((tx) =>
      tx.completeActivation(activationId, "succeeded", `device-${name}`, clock.now() + 1),
    )
  : null;
for (let i = 0; i < Number(appendsArg); i++) {
  clock.advance(1);
  await store.tx((tx) =>
    appendAudit(tx, clock, {
      type: "test.append",
      decision: "info",
      code: null,
      actor: name,
      subject: null,
      data: { i },
    }),
  );
}
await store.close();
process.stdout.write(`${JSON.stringify({ won, activationWon, secret })}\n`);
process.stdin.destroy();
