import { type Bundle, bundlePem } from "../../authority/bundle.js";
import { toPem } from "../../authority/ca-state.js";
import type { Issued } from "../../authority/issue.js";

/** What an issuance answer is made of: authority/issue.ts's Issued but its evidence facts (and the bundle served). */
export type IssuedParts = Omit<Issued, "evidence">;

/**
 * The 201 bodies of the two issuance routes as JSON text: exactly JSON.stringify of
 * { certificate, chain, serial, notBefore, notAfter, renewAfter, bundle } and of
 * { nonce, expiresAt } (test/server/issuance-answer.test.ts), without JSON.stringify's
 * escaping pass over some 3 KB of PEM on every issuance (~5 µs, plus ~3 µs for the leaf's
 * PEM). The chain's and the bundle's JSON stay the same until a rotation and are kept; the
 * leaf's PEM is written straight as a JSON string; the rest is hex, base64url and ISO 8601
 * dates, in which JSON escapes nothing.
 */
export function issuanceAnswers() {
  // Per certificate Buffer: the issuer's, the same issuance after issuance.
  const chainJson = new WeakMap<Buffer, string>();
  const pemJsonOf = (der: Buffer) => {
    let json = chainJson.get(der);
    if (json === undefined) {
      json = JSON.stringify(toPem(der));
      chainJson.set(der, json);
    }
    return json;
  };
  // The bundle object the CA state holds (buildBundle returns it until a rotation swaps it).
  let bundle: Bundle | null = null;
  let bundleJson = "";
  return {
    certificate(out: IssuedParts, b: Bundle): string {
      if (b !== bundle) {
        bundleJson = JSON.stringify(bundlePem(b));
        bundle = b;
      }
      const chain = out.chain.length === 1 ? pemJsonOf(out.chain[0]!) : out.chain.map(pemJsonOf).join(",");
      return (
        `{"certificate":${leafPemJson(out.der)},"chain":[${chain}],"serial":"${out.serial.toString("hex")}",` +
        `"notBefore":"${new Date(out.notBefore).toISOString()}",` +
        `"notAfter":"${new Date(out.notAfter).toISOString()}",` +
        `"renewAfter":"${new Date(out.renewAfter).toISOString()}","bundle":${bundleJson}}`
      );
    },
    challenge(nonce: Buffer, expiresAt: number): string {
      return `{"nonce":"${nonce.toString("base64url")}","expiresAt":"${new Date(expiresAt).toISOString()}"}`;
    },
  };
}

/** JSON.stringify(toPem(der)): base64 in 64-character lines, each "\n" written as JSON's \n. */
export function leafPemJson(der: Buffer): string {
  const b64 = der.toString("base64");
  let s = '"-----BEGIN CERTIFICATE-----\\n';
  for (let i = 0; i < b64.length; i += 64) s += `${b64.slice(i, i + 64)}\\n`;
  return `${s}-----END CERTIFICATE-----\\n"`;
}
