// CPU cost of verifying one tpm-certify attestation through the EvidenceFormat (base64url
// decoding, strict parses, magic/type, signature by the device's AK, binding, Name, key
// rules, CSR key comparison), and one tpm-quote for comparison. Single thread, in-process.
//
//   node --import tsx scripts/bench-evidence.ts [--n 3000] [--warmup 300]
//
// "warm" reuses the device record (the AK's parsed key is cached, as for a device that
// renews); "cold" gives each call a fresh AK so the stored AK is parsed and imported again.
import { performance } from "node:perf_hooks";
import { tpmCertifyFormat } from "../src/evidence/tpm-certify.js";
import { SIGNER_CACHE_MAX } from "../src/evidence/tpm-common.js";
import { tpmQuoteFormat } from "../src/evidence/tpm-quote.js";
import { computePcrDigest, marshalAttest, pcrSelectionOf, TPM_ALG } from "../src/tpm/index.js";
import {
  AK_ATTRS,
  b64,
  binding,
  certifyAttestation,
  context,
  device,
  generate,
  KEY_ATTRS,
  type KeyKind,
  quoteAttest,
  type SimKey,
  simKey,
  tpmSign,
} from "../test/evidence/helpers/tpm-sim.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = opt("--n", 3000);
const WARMUP = opt("--warmup", 300);

function stats(samples: number[]): { median: number; p90: number; min: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p90: at(0.9), min: s[0]! };
}

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await fn();
    out.push((performance.now() - t0) * 1000);
  }
  return out;
}

const certify = tpmCertifyFormat();
const quote = tpmQuoteFormat();

/** A distinct 32-byte authPolicy per index. */
function policy(i: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32BE(i + 1);
  return b;
}

async function benchCertify(akKind: KeyKind, keyKind: KeyKind, cold: boolean): Promise<number[]> {
  const key = simKey(keyKind, KEY_ATTRS);
  const csr = { spki: key.spki, publicKey: key.publicKey };
  // Cold: more distinct stored AKs than the signer cache holds, visited round-robin. They
  // share one key pair and differ in authPolicy, so each is parsed and imported afresh.
  const keys = generate(akKind);
  const aks: SimKey[] = Array.from({ length: cold ? SIGNER_CACHE_MAX + 100 : 1 }, (_, i) =>
    simKey(akKind, AK_ATTRS, cold ? { authPolicy: policy(i) } : {}, keys),
  );
  const cases = aks.map((ak) => ({
    att: certifyAttestation(ak, key, binding(key.spki)),
    ctx: context(device(ak), csr),
  }));
  let i = 0;
  return time(async () => {
    const c = cases[i++ % cases.length]!;
    const facts = await certify.verify(c.att, c.ctx);
    if (facts.keyResidency !== "tpm") throw new Error("bad facts");
  });
}

async function benchQuote(akKind: KeyKind): Promise<number[]> {
  const ak = simKey(akKind, AK_ATTRS);
  const csrKey = simKey("p256", 0);
  const sel = [pcrSelectionOf(TPM_ALG.SHA256, [0, 1, 2, 3, 7])];
  const banks = new Map([[TPM_ALG.SHA256, new Map([0, 1, 2, 3, 7].map((p) => [p, Buffer.alloc(32, p)]))]]);
  const bytes = marshalAttest(
    quoteAttest(ak, binding(csrKey.spki), sel, computePcrDigest(TPM_ALG.SHA256, sel, banks)),
  );
  const att = { format: "tpm-quote", quoteInfo: b64(bytes), signature: b64(tpmSign(ak, bytes)) };
  const ctx = context(device(ak), csrKey);
  return time(() => quote.verify(att, ctx));
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${N} calls after ${WARMUP} warm-up, µs per verify`);
  console.log("case                                   median     p90     min");
  const row = (label: string, s: number[]) => {
    const { median, p90, min } = stats(s);
    console.log(
      `${label.padEnd(36)} ${median.toFixed(1).padStart(8)} ${p90.toFixed(1).padStart(7)} ${min.toFixed(1).padStart(7)}`,
    );
  };
  row("tpm-certify P-256 AK, P-256 key", await benchCertify("p256", "p256", false));
  row("tpm-certify RSA-2048 AK, RSA-2048 key", await benchCertify("rsa2048", "rsa2048", false));
  row("tpm-certify RSA-2048 AK, P-256 key", await benchCertify("rsa2048", "p256", false));
  row("tpm-certify P-256 AK, cold AK", await benchCertify("p256", "p256", true));
  row("tpm-certify RSA-2048 AK, cold AK", await benchCertify("rsa2048", "rsa2048", true));
  row("tpm-quote P-256 AK", await benchQuote("p256"));
  row("tpm-quote RSA-2048 AK", await benchQuote("rsa2048"));
}

await main();
