import { createHash } from "node:crypto";
import { canonicalJson } from "../audit/index.js";
import { MayflyError } from "../errors/index.js";
import type { CaSigner, HashName, KeyStore } from "../keys/keystore.js";
import type { CaCertificate } from "../store/types.js";
import { type Bundle, type BundleContent, type BundleSignature, bundleContent } from "./bundle.js";
import type { CaState } from "./ca-state.js";

// The bundle signature (README "Rotation"): each root not retired signs the canonical JSON
// (RFC 8785) of every bundle member but `signatures`, as a detached JWS (RFC 7515 §7.2.2
// flattened syntax without "payload"). The key is the root's CaSigner, so a root inside an
// HSM signs inside it: the JWS signing input is assembled here and handed to the signer,
// and its DER ECDSA signature is turned into the JWS r||s form.

export const BUNDLE_JWS_TYPE = "mayfly-bundle+jws";

function algOf(signer: CaSigner): { alg: "ES256" | "ES384" | "RS256"; hash: HashName; size: number } {
  const spec = signer.spec;
  if (spec.kind === "ec")
    return spec.curve === "P-256"
      ? { alg: "ES256", hash: "sha256", size: 32 }
      : { alg: "ES384", hash: "sha384", size: 48 };
  return { alg: "RS256", hash: "sha256", size: 0 };
}

/** Ecdsa-Sig-Value DER -> r||s, each left-padded to `size` octets (RFC 7518 §3.4). */
function ecdsaDerToJose(der: Buffer, size: number): Buffer {
  const fail = (): never => {
    throw new MayflyError("internal.error", "the root signer returned a malformed ECDSA signature");
  };
  let i = 0;
  const readLength = (): number => {
    let len = der[i++] ?? fail();
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n !== 1) fail();
      len = der[i++] ?? fail();
    }
    return len;
  };
  if (der[i++] !== 0x30) fail();
  const total = readLength();
  if (i + total !== der.length) fail();
  const out = Buffer.alloc(2 * size);
  for (let k = 0; k < 2; k++) {
    if (der[i++] !== 0x02) fail();
    const len = readLength();
    let v = der.subarray(i, i + len);
    i += len;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size || v.length === 0) fail();
    v.copy(out, k * size + size - v.length);
  }
  if (i !== der.length) fail();
  return out;
}

export function bundlePayload(content: BundleContent): Buffer {
  return Buffer.from(canonicalJson(content, "bundle"), "utf8");
}

export async function signBundlePayload(
  payload: Buffer,
  root: CaCertificate,
  signer: CaSigner,
): Promise<BundleSignature> {
  const { alg, hash, size } = algOf(signer);
  const header = {
    alg,
    kid: root.id,
    typ: BUNDLE_JWS_TYPE,
    "x5t#S256": createHash("sha256").update(root.der).digest("base64url"),
  };
  const protectedB64 = Buffer.from(JSON.stringify(header), "utf8").toString("base64url");
  const input = Buffer.from(`${protectedB64}.${payload.toString("base64url")}`, "ascii");
  const raw = await signer.sign(input, hash);
  const sig = size ? ecdsaDerToJose(raw, size) : raw;
  return { protected: protectedB64, signature: sig.toString("base64url") };
}

/**
 * The state with its bundle signed by every root not retired (current, next, previous):
 * during a rotation both roots sign, so a relying party holding either accepts it.
 */
export async function signState(
  state: CaState,
  deps: { keys: KeyStore; trustDomain: string; now: number },
): Promise<CaState> {
  const content = bundleContent(state, deps.trustDomain, deps.now);
  const payload = bundlePayload(content);
  const signatures: BundleSignature[] = [];
  for (const root of state.roots) {
    const signer = await deps.keys.load(root.keyLabel);
    signatures.push(await signBundlePayload(payload, root, signer));
  }
  const bundle: Bundle = { ...content, signatures };
  return { ...state, bundle };
}
