import { endianness } from "node:os";
import { MayflyError } from "../errors/index.js";
import type { KeySpec } from "./keystore.js";
import { EC_PARAMS } from "./pkcs11-encoding.js";
import { type Handle, P11, type Pkcs11Lib } from "./pkcs11-module.js";
import type { TokenConnection } from "./pkcs11-token.js";

export type Template = { type: number; value?: number | boolean | string | Buffer }[];
export type KeyPairHandles = { privateKey: Handle; publicKey: Handle };

/** Templates are verified after generation as well: some tokens ignore attributes they do not support. */
export function keyPairTemplates(label: string, spec: KeySpec): { pub: Template; priv: Template } {
  const id = Buffer.from(label, "utf8");
  const common: Template = [
    { type: P11.CKA_TOKEN, value: true },
    { type: P11.CKA_LABEL, value: label },
    { type: P11.CKA_ID, value: id },
    { type: P11.CKA_KEY_TYPE, value: spec.kind === "ec" ? P11.CKK_EC : P11.CKK_RSA },
  ];
  const pub: Template = [
    { type: P11.CKA_CLASS, value: P11.CKO_PUBLIC_KEY },
    ...common,
    { type: P11.CKA_PRIVATE, value: false },
    { type: P11.CKA_VERIFY, value: true },
    { type: P11.CKA_ENCRYPT, value: false },
    { type: P11.CKA_WRAP, value: false },
    ...(spec.kind === "ec"
      ? [{ type: P11.CKA_EC_PARAMS, value: EC_PARAMS[spec.curve] }]
      : [
          { type: P11.CKA_MODULUS_BITS, value: spec.bits },
          { type: P11.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        ]),
  ];
  // A CA key signs and does nothing else: no decryption or unwrap oracle, no key agreement.
  const priv: Template = [
    { type: P11.CKA_CLASS, value: P11.CKO_PRIVATE_KEY },
    ...common,
    { type: P11.CKA_PRIVATE, value: true },
    { type: P11.CKA_SENSITIVE, value: true },
    { type: P11.CKA_EXTRACTABLE, value: false },
    { type: P11.CKA_SIGN, value: true },
    { type: P11.CKA_DECRYPT, value: false },
    { type: P11.CKA_UNWRAP, value: false },
    { type: P11.CKA_DERIVE, value: false },
  ];
  return { pub, priv };
}

const LE = endianness() === "LE";

export function ulong(b: Buffer): number {
  if (b.length === 8) return Number(LE ? b.readBigUInt64LE() : b.readBigUInt64BE());
  if (b.length === 4) return LE ? b.readUInt32LE() : b.readUInt32BE();
  throw new MayflyError("key.token_failed", `a CK_ULONG attribute has ${b.length} bytes`);
}

export const bool = (b: Buffer): boolean => b.length === 1 && b[0] !== 0;

/** Every object matching `template`, in batches; the find operation is always finalised. */
export function findObjects(lib: Pkcs11Lib, s: Handle, template: Template): Handle[] {
  lib.C_FindObjectsInit(s, template);
  try {
    const out: Handle[] = [];
    for (;;) {
      const batch = lib.C_FindObjects(s, 64);
      if (batch.length === 0) return out;
      out.push(...batch);
    }
  } finally {
    lib.C_FindObjectsFinal(s);
  }
}

/** Token key objects labelled `label`; class null means private and public. */
export function findKeys(conn: TokenConnection, label: string, cls: number | null): Promise<Handle[]> {
  const classes = cls === null ? [P11.CKO_PRIVATE_KEY, P11.CKO_PUBLIC_KEY] : [cls];
  return conn.pool.run((s) =>
    classes.flatMap((c) =>
      findObjects(conn.lib, s, [
        { type: P11.CKA_CLASS, value: c },
        { type: P11.CKA_TOKEN, value: true },
        { type: P11.CKA_LABEL, value: label },
      ]),
    ),
  );
}

/** Reads attributes in one call; a getter throws if the token left one out. */
export function readAttributes(
  lib: Pkcs11Lib,
  s: Handle,
  obj: Handle,
  types: number[],
): (type: number) => Buffer {
  const got = lib.C_GetAttributeValue(
    s,
    obj,
    types.map((type) => ({ type })),
  );
  return (type) => {
    const v = got.find((a) => a.type === type)?.value;
    if (!v)
      throw new MayflyError("key.token_failed", `the token did not return attribute 0x${type.toString(16)}`);
    return v;
  };
}
