import { createHash } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import type { CaSigner, HashName } from "../keys/keystore.js";
import {
  bitString,
  contextTag,
  DER_TRUE,
  headerSize,
  octetString,
  oid,
  sequence,
  TAG_BIT_STRING,
  TAG_SEQUENCE,
  tlv,
  writeHeader,
  x509Time,
} from "./der.js";
import { readIssuerCertificate } from "./issuer-certificate.js";
import { splitSpki } from "./key-identifier.js";
import { checkLeafInput, type LeafInput } from "./leaf-input.js";
import { assuranceOidDer, encodeMayflyAssurance } from "./mayfly-extension.js";
import {
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_BASIC_CONSTRAINTS,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_KP_CLIENT_AUTH,
  OID_KP_SERVER_AUTH,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_IDENTIFIER,
} from "./oids.js";
import { SERIAL_LENGTH } from "./serial.js";
import { issuerAlgorithm } from "./signature-algorithms.js";

// The hot path: a leaf is a fixed DER template from the issuer with the per-agent
// parts spliced in. Everything that does not depend on the LeafInput is encoded
// once in createLeafEncoder; per call we write serial, validity, SPKI, SAN, SKI and
// the Mayfly extension, and the lengths around them. test/x509 proves the output
// byte-identical to @peculiar/x509's for the same inputs.

export interface LeafIssuer {
  /** The issuing CA's certificate (DER); its subject and SKI are copied into leaves. */
  certificateDer: Buffer;
  signer: CaSigner;
  /**
   * OID of the Mayfly assurance extension (config `ca.assuranceExtensionOid`); defaults
   * to OID_MAYFLY_ASSURANCE. Refused with certificate.profile_violation when
   * `assuranceOidProblem` names a problem.
   */
  assuranceOid?: string;
}

export interface LeafEncoder {
  readonly hash: HashName;
  /** The signatureAlgorithm AlgorithmIdentifier DER both TBS and Certificate carry. */
  readonly signatureAlgorithm: Buffer;
  /** TBSCertificate DER; throws certificate.profile_violation on bad input. */
  encodeTbs(input: LeafInput): Buffer;
  /** Signed Certificate DER. Check it with `checkLeaf` before handing it out. */
  issue(input: LeafInput): Promise<Buffer>;
}

// version [0] EXPLICIT INTEGER 2 (v3), then the serial INTEGER header (always 16 octets).
const VERSION_AND_SERIAL_HEADER = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, SERIAL_LENGTH]);
const EMPTY_NAME = sequence();

const EXT_BASIC_CONSTRAINTS = sequence(oid(OID_BASIC_CONSTRAINTS), DER_TRUE, octetString(sequence()));
// KeyUsage BIT STRING: 7 unused bits, bit 0 (digitalSignature) set.
const EXT_KEY_USAGE = sequence(
  oid(OID_KEY_USAGE),
  DER_TRUE,
  octetString(tlv(TAG_BIT_STRING, Uint8Array.of(7, 0x80))),
);
const EXT_EXT_KEY_USAGE = sequence(
  oid(OID_EXT_KEY_USAGE),
  octetString(sequence(oid(OID_KP_CLIENT_AUTH), oid(OID_KP_SERVER_AUTH))),
);
const SAN_PREFIX = Buffer.concat([oid(OID_SUBJECT_ALT_NAME), DER_TRUE]);
const SKI_PREFIX = oid(OID_SUBJECT_KEY_IDENTIFIER);
const URI_TAG = contextTag(6, false);

export function createLeafEncoder(issuer: LeafIssuer): LeafEncoder {
  const facts = readIssuerCertificate(issuer.certificateDer);
  if (!facts.publicKey.equals(issuer.signer.publicKey)) {
    throw new MayflyError(
      "certificate.profile_violation",
      "the signer's key is not the issuer certificate's key",
      {
        field: "issuer.subjectPublicKeyInfo",
      },
    );
  }
  const alg = issuerAlgorithm(issuer.signer.spec);
  const algAndIssuer = Buffer.concat([alg.der, facts.subjectName]);
  const extAki = sequence(
    oid(OID_AUTHORITY_KEY_IDENTIFIER),
    octetString(sequence(tlv(contextTag(0, false), facts.subjectKeyIdentifier))),
  );
  const mayflyOid = assuranceOidDer(issuer.assuranceOid);

  function encodeTbs(input: LeafInput): Buffer {
    checkLeafInput(input);
    const { publicKey } = splitSpki(input.spki, "certificate.profile_violation", "LeafInput.spki");
    const keyId = createHash("sha1").update(publicKey).digest();
    const san = sequence(
      SAN_PREFIX,
      octetString(sequence(tlv(URI_TAG, Buffer.from(input.spiffeId, "ascii")))),
    );
    const ski = sequence(SKI_PREFIX, octetString(octetString(keyId)));
    const exts = sequence(
      EXT_BASIC_CONSTRAINTS,
      EXT_KEY_USAGE,
      EXT_EXT_KEY_USAGE,
      san,
      extAki,
      ski,
      sequence(mayflyOid, octetString(encodeMayflyAssurance(input.assurance))),
    );
    const extsHeader = Buffer.allocUnsafe(headerSize(exts.length));
    writeHeader(extsHeader, 0, contextTag(3, true), exts.length);
    return tlv(TAG_SEQUENCE, [
      VERSION_AND_SERIAL_HEADER,
      input.serial,
      algAndIssuer,
      sequence(x509Time(input.notBefore), x509Time(input.notAfter)),
      EMPTY_NAME,
      input.spki,
      extsHeader,
      exts,
    ]);
  }

  async function issue(input: LeafInput): Promise<Buffer> {
    const tbs = encodeTbs(input);
    const signature = await issuer.signer.sign(tbs, alg.hash);
    return tlv(TAG_SEQUENCE, [tbs, alg.der, bitString(signature)]);
  }

  return { hash: alg.hash, signatureAlgorithm: alg.der, encodeTbs, issue };
}
