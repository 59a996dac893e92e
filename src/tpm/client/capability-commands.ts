import type { TpmReader } from "../buffer-reader.js";
import { TpmWriter } from "../buffer-writer.js";
import { malformed } from "../errors.js";
import { type PcrSelection, readPcrSelection } from "../pcr.js";
import type { CommandRunner } from "./command.js";
import { TPM_CAP, TPM_CC } from "./constants.js";

// TPM2_GetCapability (Part 3 §30.2) for handles, TPM properties and PCR banks. A TPM answers
// at most one buffer's worth and sets moreData; the list helpers follow it to the end.

/** MAX_CAP_DATA / sizeof(entry) for the usual 1024-byte MAX_CAP_BUFFER, rounded up generously. */
const MAX_CAP_ENTRIES = 1024;

interface CapabilityPage<T> {
  readonly moreData: boolean;
  readonly items: T[];
}

async function getCapability<T>(
  tpm: CommandRunner,
  capability: number,
  property: number,
  count: number,
  readItem: (r: TpmReader, field: string) => T,
): Promise<CapabilityPage<T>> {
  const name = "TPM2_GetCapability";
  const f = `${name} response`;
  const params = new TpmWriter()
    .u32(capability, `${name}.capability`)
    .u32(property, `${name}.property`)
    .u32(count, `${name}.propertyCount`)
    .finish();
  const { value } = await tpm.run({ name, code: TPM_CC.GetCapability, params }, (r) => {
    const more = r.u8(`${f}.moreData`);
    if (more > 1) throw malformed(`${f}.moreData`, `${more} is not a TPMI_YES_NO`);
    const cap = r.u32(`${f}.capabilityData.capability`);
    if (cap !== capability)
      throw malformed(`${f}.capabilityData.capability`, `${cap}, asked for ${capability}`);
    const n = r.u32(`${f}.capabilityData.data.count`);
    if (n > MAX_CAP_ENTRIES || n > count) {
      throw malformed(`${f}.capabilityData.data.count`, `${n} entries, asked for at most ${count}`);
    }
    const items: T[] = [];
    for (let i = 0; i < n; i++) items.push(readItem(r, `${f}.capabilityData.data[${i}]`));
    return { moreData: more === 1, items };
  });
  return value;
}

/** Every handle of `first`'s type (TPM_HT in the top byte) from `first` on. */
export async function listHandles(tpm: CommandRunner, first: number): Promise<number[]> {
  const type = first >>> 24;
  const out: number[] = [];
  let next = first;
  for (;;) {
    const page = await getCapability(tpm, TPM_CAP.HANDLES, next, 254, (r, f) => r.u32(f));
    for (const h of page.items) {
      if (h >>> 24 !== type || h < next)
        throw malformed("TPM2_GetCapability response.handles", `0x${h.toString(16)}`);
      out.push(h);
    }
    const last = page.items.at(-1);
    if (!page.moreData || last === undefined) return out;
    next = last + 1;
  }
}

export interface TaggedProperty {
  readonly property: number;
  readonly value: number;
}

/** TPM_CAP_TPM_PROPERTIES from `first`: up to `count` (property, value) pairs, in order. */
export async function getProperties(
  tpm: CommandRunner,
  first: number,
  count: number,
): Promise<{ moreData: boolean; properties: TaggedProperty[] }> {
  const page = await getCapability(tpm, TPM_CAP.TPM_PROPERTIES, first, count, (r, f) => ({
    property: r.u32(`${f}.property`),
    value: r.u32(`${f}.value`),
  }));
  return { moreData: page.moreData, properties: page.items };
}

/** One property's value; tpm.malformed if the TPM does not report it. */
export async function getProperty(tpm: CommandRunner, property: number): Promise<number> {
  const { properties } = await getProperties(tpm, property, 1);
  const p = properties[0];
  if (!p || p.property !== property) {
    throw malformed("TPM2_GetCapability response", `property 0x${property.toString(16)} not reported`);
  }
  return p.value;
}

/** The allocated PCR banks and which PCRs each one has (TPM_CAP_PCRS). */
export async function getPcrBanks(tpm: CommandRunner): Promise<PcrSelection[]> {
  const name = "TPM2_GetCapability";
  const params = new TpmWriter()
    .u32(TPM_CAP.PCRS, `${name}.capability`)
    .u32(0, `${name}.property`)
    .u32(1, `${name}.propertyCount`)
    .finish();
  const f = `${name} response`;
  const { value } = await tpm.run({ name, code: TPM_CC.GetCapability, params }, (r) => {
    const more = r.u8(`${f}.moreData`);
    if (more !== 0) throw malformed(`${f}.moreData`, "PCR banks always fit one answer");
    const cap = r.u32(`${f}.capabilityData.capability`);
    if (cap !== TPM_CAP.PCRS) throw malformed(`${f}.capabilityData.capability`, `${cap}`);
    return readPcrSelection(r, `${f}.capabilityData.assignedPCR`);
  });
  return value;
}
