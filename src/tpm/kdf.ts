import { createHash, createHmac } from "node:crypto";
import { malformed } from "./errors.js";
import { hashAlgInfo } from "./hash-algs.js";

// The two key-derivation functions of TPM 2.0 Part 1 §11.4.10. Labels are written with their
// terminating NUL: the TPM includes it, and leaving it out fails with TPM_RC_INTEGRITY.

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function label0(label: string): Buffer {
  return Buffer.concat([Buffer.from(label, "latin1"), Buffer.alloc(1)]);
}

function checkBits(bits: number): void {
  // Mayfly only derives whole-byte keys; odd bit counts would need the spec's top-bit masking.
  if (!Number.isInteger(bits) || bits <= 0 || bits % 8 !== 0)
    throw malformed("bits", `${bits} is not a byte multiple`);
}

/** KDFa (SP 800-108 counter mode, HMAC): HMAC_H(key, i || label\0 || contextU || contextV || bits). */
export function kdfa(
  hashAlg: number,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Buffer {
  checkBits(bits);
  const h = hashAlgInfo(hashAlg, "kdfa.hashAlg");
  const out: Buffer[] = [];
  for (let i = 1, got = 0; got < bits / 8; i++, got += h.size) {
    out.push(
      createHmac(h.node, key)
        .update(u32(i))
        .update(label0(label))
        .update(contextU)
        .update(contextV)
        .update(u32(bits))
        .digest(),
    );
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

/** KDFe (SP 800-56A concatenation KDF): H(i || Z || label\0 || partyUInfo || partyVInfo). */
export function kdfe(
  hashAlg: number,
  z: Uint8Array,
  label: string,
  partyUInfo: Uint8Array,
  partyVInfo: Uint8Array,
  bits: number,
): Buffer {
  checkBits(bits);
  const h = hashAlgInfo(hashAlg, "kdfe.hashAlg");
  const out: Buffer[] = [];
  for (let i = 1, got = 0; got < bits / 8; i++, got += h.size) {
    out.push(
      createHash(h.node)
        .update(u32(i))
        .update(z)
        .update(label0(label))
        .update(partyUInfo)
        .update(partyVInfo)
        .digest(),
    );
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}
