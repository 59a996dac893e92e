// `node --import tsx scripts/bench/floor-check.ts`: the floor peer's sanity check (not a
// test; floor-server.ts is a measuring tool). Starts the floor as the bench does (compiled,
// node:cluster) over a few simulated devices, then makes issuances the way the load tool
// does (challenge, TPM key, TPM2_Certify by the AK, CSR, certificate request through the
// agent library's CaClient), checks that CaClient accepted the answer and that the leaf
// verifies under the intermediate the answer chains to, and that a tampered attestation is
// refused.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaClient } from "../../src/agent/ca-client.js";
import { buildCsr, softwareCsrSigner } from "../../src/agent/csr.js";
import { bindingDigest } from "../../src/evidence/binding.js";
import type { DeviceLine } from "./load-worker.js";
import { startFloor } from "./servers.js";
import { certify, certifyAttestation, createKey, simAk, simEk } from "./sim-tpm.js";

const dir = mkdtempSync(join(tmpdir(), "mayfly-floor-check-"));
const devices = Array.from({ length: 4 }, (_, i) => ({ agentId: `bench-${i}`, ak: simAk(simEk()) }));
const devicesPath = join(dir, "devices.jsonl");
writeFileSync(
  devicesPath,
  devices
    .map((d) =>
      JSON.stringify({
        agentId: d.agentId,
        akPkcs8: d.ak.privateKey.export({ format: "der", type: "pkcs8" }).toString("base64url"),
        akTpm2b: d.ak.tpm2b.toString("base64url"),
        akQn: d.ak.qualifiedName.toString("base64url"),
      } satisfies DeviceLine),
    )
    .join("\n"),
);

async function issue(client: CaClient, d: (typeof devices)[number], tamper = false) {
  const { nonce } = await client.challenge(d.agentId);
  const key = createKey();
  const evidence = certify(d.ak, key, bindingDigest(nonce, key.spki));
  if (tamper) evidence.attest[evidence.attest.length - 1]! ^= 1;
  const csr = await buildCsr({ spki: key.spki, sign: softwareCsrSigner(key.privateKey) });
  return client.requestCertificate(d.agentId, {
    csr,
    nonce,
    attestation: certifyAttestation(key, evidence),
  });
}

const floor = await startFloor({
  dir: join(dir, "floor"),
  devicesPath,
  workers: 2,
  trustDomain: "mayfly.internal",
});
const client = new CaClient({ url: floor.url, ca: floor.caPem });
let failed = false;
try {
  for (const d of devices) {
    const out = await issue(client, d);
    const leaf = new X509Certificate(out.certificate);
    const inter = new X509Certificate(out.chain[0]!);
    const ok = leaf.verify(inter.publicKey) && inter.verify(new X509Certificate(floor.caPem).publicKey);
    console.log(
      `${d.agentId}: serial ${out.serial}, ${leaf.subjectAltName}, notAfter ${out.notAfter}, ` +
        `renewAfter ${out.renewAfter}, chain verifies: ${ok}`,
    );
    if (!ok || !leaf.subjectAltName?.includes(`/agent/${d.agentId}`)) failed = true;
  }
  try {
    await issue(client, devices[0]!, true);
    console.log("tampered attestation: ACCEPTED");
    failed = true;
  } catch (e) {
    console.log(`tampered attestation: refused (${(e as { code?: string }).code})`);
  }
} finally {
  client.close();
  await floor.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(failed ? "floor check FAILED" : "floor check ok");
process.exit(failed ? 1 : 0);
