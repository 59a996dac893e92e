import { AsnConvert, AsnObjectIdentifierConverter, AsnProp, AsnPropTypes } from "@peculiar/asn1-schema";
import { OID_MAYFLY_ASSURANCE } from "./oids.js";

// asn1js (3.x, under @peculiar/asn1-schema and @peculiar/x509) encodes OID arcs above
// 2^53 correctly but decodes any arc longer than 8 base-128 octets to a placeholder
// such as "2.25.{0337534a...}", which it then re-encodes as just "2.25" — silently.
// Every 2.25 UUID OID, ours included, is hit: @peculiar/x509's certificate generator
// parses and re-serializes extensions, and its parser reports the Mayfly extension
// as "2.25". Upstream: https://github.com/PeculiarVentures/ASN1.js/issues/174 (open).
//
// The fix below replaces only the text rendering of a decoded OID, and only when a
// sub-identifier was too big for a Number; such OIDs had no usable rendering before,
// so nothing that worked changes. It is applied once, on first import, and checked.
//
// A configured assurance OID (`ca.assuranceExtensionOid`) with short arcs, such as a
// PEN arc, needs no fix. asn1js also mishandles sub-identifiers of exactly 8 base-128
// octets (2^49 up to 2^56): it cannot encode them and decodes them through a lossy
// Number. The fix does not cover them; `assuranceOidProblem` (oids.ts) refuses such OIDs.

interface SidBlock {
  isHexOnly: boolean;
  valueDec: number;
  valueHexView: Uint8Array;
}

interface OidValueBlock {
  value: SidBlock[];
  toString(): string;
}

function sidValue(sid: SidBlock): bigint {
  if (!sid.isHexOnly) return BigInt(sid.valueDec);
  let v = 0n;
  for (const b of sid.valueHexView) v = (v << 7n) | BigInt(b & 0x7f);
  return v;
}

const PATCHED = Symbol.for("mayfly.asn1js-oid-fix");

function install(): void {
  const block = AsnObjectIdentifierConverter.toASN("1.2").valueBlock as unknown as OidValueBlock;
  const proto = Object.getPrototypeOf(block) as OidValueBlock & { [PATCHED]?: true };
  if (proto[PATCHED]) return;
  const original = proto.toString;
  proto.toString = function (this: OidValueBlock): string {
    if (!this.value.some((s) => s.isHexOnly)) return original.call(this);
    const [first, ...rest] = this.value.map(sidValue);
    if (first === undefined) return "";
    const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
    return [...head, ...rest].join(".");
  };
  proto[PATCHED] = true;
}

class OidProbe {
  id = "";
}
AsnProp({ type: AsnPropTypes.ObjectIdentifier })(OidProbe.prototype, "id");

install();

// Fail closed at load if the fix does not take (a changed asn1js would otherwise
// bring the silent corruption back).
{
  const probe = new OidProbe();
  probe.id = OID_MAYFLY_ASSURANCE;
  const back = AsnConvert.parse(AsnConvert.serialize(probe), OidProbe).id;
  if (back !== OID_MAYFLY_ASSURANCE) {
    throw new Error(`asn1js cannot round-trip ${OID_MAYFLY_ASSURANCE} (got ${back}); see asn1js-oid-fix.ts`);
  }
}
