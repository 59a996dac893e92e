import { AsnConvert, AsnProp, AsnPropTypes } from "@peculiar/asn1-schema";
import type { MayflyAssurance } from "./mayfly-extension.js";

// MayflyAssurance described with @peculiar/asn1-schema, independently of the hand
// encoder in mayfly-extension.ts. The reference leaf builder and the post-signing
// check use it, so a bug in the hand encoder cannot hide behind itself.
// Decorators are applied as plain calls: the project compiles without
// experimentalDecorators and asn1-schema's decorators are of the legacy kind.

export class MayflyAssuranceAsn {
  version = 1;
  ownerId = "";
  deviceId = "";
  agentId = "";
  attestationFormat = "";
  keyResidency = 0;
}

AsnProp({ type: AsnPropTypes.Integer })(MayflyAssuranceAsn.prototype, "version");
AsnProp({ type: AsnPropTypes.Utf8String })(MayflyAssuranceAsn.prototype, "ownerId");
AsnProp({ type: AsnPropTypes.Utf8String })(MayflyAssuranceAsn.prototype, "deviceId");
AsnProp({ type: AsnPropTypes.Utf8String })(MayflyAssuranceAsn.prototype, "agentId");
AsnProp({ type: AsnPropTypes.Utf8String })(MayflyAssuranceAsn.prototype, "attestationFormat");
AsnProp({ type: AsnPropTypes.Enumerated })(MayflyAssuranceAsn.prototype, "keyResidency");

export function referenceEncodeMayflyAssurance(a: MayflyAssurance): Buffer {
  const asn = new MayflyAssuranceAsn();
  asn.ownerId = a.ownerId;
  asn.deviceId = a.deviceId;
  asn.agentId = a.agentId;
  asn.attestationFormat = a.attestationFormat;
  asn.keyResidency = a.keyResidency === "tpm" ? 0 : 1;
  return Buffer.from(AsnConvert.serialize(asn));
}

export function referenceDecodeMayflyAssurance(der: Uint8Array): MayflyAssuranceAsn {
  return AsnConvert.parse(der, MayflyAssuranceAsn);
}
