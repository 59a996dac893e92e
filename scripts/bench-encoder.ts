// Leaf issuance throughput: Mayfly's template encoder (node:crypto signing through a
// CaSigner) against @peculiar/x509's X509CertificateGenerator (WebCrypto signing),
// same issuer, same inputs, same machine, interleaved rounds.
//
//   node --import tsx scripts/bench-encoder.ts [--quick] [--n 2000] [--rounds 5]
//
// Columns: fast = encode + sign; fast+check = what the pipeline does (encode, sign,
// re-parse and check with checkLeaf); peculiar = the reference builder; tbs = the
// encoder alone, without signing.
import { generateKeyPairSync, randomBytes, webcrypto } from "node:crypto";
import { performance } from "node:perf_hooks";
import { checkLeaf, createLeafEncoder, type LeafInput, newSerial } from "../src/x509/index.js";
import { buildReferenceLeaf } from "../src/x509/leaf-reference.js";
import {
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from "../src/x509/peculiar.js";
import { memorySignerFromKey } from "../test/helpers/memory-signer.js";

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = opt("--n", quick ? 300 : 2000);
const ROUNDS = opt("--rounds", quick ? 3 : 5);

async function main(): Promise<void> {
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const issuerCert = await X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=Bench Intermediate, O=Mayfly",
    notBefore: new Date(Date.UTC(2020, 0, 1)),
    notAfter: new Date(Date.UTC(2040, 0, 1)),
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [await SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
  const certificateDer = Buffer.from(issuerCert.rawData);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const signer = memorySignerFromKey(pkcs8, { kind: "ec", curve: "P-256" }, "bench");
  const encoder = createLeafEncoder({ certificateDer, signer });
  const reference = {
    certificate: new X509Certificate(issuerCert.rawData),
    signingKey: keys.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
  };

  const spkis = Array.from({ length: 16 }, () =>
    generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }),
  );
  const t0 = Date.UTC(2030, 0, 1);
  const inputs: LeafInput[] = Array.from({ length: N }, (_, i) => ({
    serial: newSerial({ bytes: randomBytes }),
    notBefore: t0 + i * 1000 - 30_000,
    notAfter: t0 + i * 1000 + 300_000,
    spki: spkis[i % spkis.length]!,
    spiffeId: `spiffe://mayfly.internal/agent/ag_${i.toString(36).padStart(8, "0")}`,
    assurance: {
      ownerId: `owner-${i % 97}`,
      deviceId: `dev-${i % 31}`,
      agentId: `ag_${i.toString(36).padStart(8, "0")}`,
      attestationFormat: "tpm-certify",
      keyResidency: i % 2 ? "tpm" : "bound",
    },
  }));

  const runners: Record<string, (x: LeafInput) => Promise<unknown>> = {
    fast: (x) => encoder.issue(x),
    "fast+check": async (x) =>
      checkLeaf(await encoder.issue(x), { issuerCertificate: certificateDer, leaf: x }),
    peculiar: (x) => buildReferenceLeaf(reference, x),
    tbs: async (x) => encoder.encodeTbs(x),
  };
  const names = Object.keys(runners);

  // Warm up the JIT and the WebCrypto thread pool for every path.
  for (const name of names) for (const x of inputs.slice(0, Math.min(200, N))) await runners[name]!(x);

  const results: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  console.log(
    `node ${process.version}, ${N} leaves x ${ROUNDS} rounds, P-256 issuer, P-256 agent keys, sequential`,
  );
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order each round so no path always runs first (or last).
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    const line: string[] = [];
    for (const name of order) {
      const start = performance.now();
      for (const x of inputs) await runners[name]!(x);
      const rate = N / ((performance.now() - start) / 1000);
      results[name]!.push(rate);
    }
    for (const name of names) line.push(`${name} ${results[name]![r]!.toFixed(0).padStart(7)}/s`);
    console.log(`round ${r + 1}: ${line.join("  ")}`);
  }
  const median = (a: number[]) => {
    const s = [...a].sort((x, y) => x - y);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  const med = Object.fromEntries(names.map((n) => [n, median(results[n]!)]));
  console.log(`median: ${names.map((n) => `${n} ${med[n]!.toFixed(0)}/s`).join("  ")}`);
  console.log(`ratio fast/peculiar: ${(med.fast! / med.peculiar!).toFixed(1)}x`);
  console.log(`ratio fast+check/peculiar: ${(med["fast+check"]! / med.peculiar!).toFixed(1)}x`);
}

await main();
