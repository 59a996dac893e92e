import { createHash } from "node:crypto";
import { TpmWriter } from "../buffer-writer.js";
import { malformed } from "../errors.js";
import { hashAlgInfo } from "../hash-algs.js";
import { readName } from "../name.js";
import { type Authorization, type CommandRunner, EMPTY_PASSWORD } from "./command.js";
import { TPM_CC } from "./constants.js";
import { MAX_NV_BUFFER_BYTES, type NvPublic, readNvPublic } from "./structures.js";

// TPM2_NV_ReadPublic and TPM2_NV_Read (Part 3 §31). EK certificates are read with the
// index's own (empty) authorization, as `tpm2_nvread` without -C does: that works whatever
// the owner password is, because the TCG EK indices are authread.

const MAX_NV_PUBLIC_BYTES = 4 + 2 + 4 + 2 + 64 + 2;

export async function nvReadPublic(
  tpm: CommandRunner,
  nvIndex: number,
): Promise<NvPublic & { name: Buffer }> {
  const name = "TPM2_NV_ReadPublic";
  const f = `${name} response`;
  const { value } = await tpm.run({ name, code: TPM_CC.NV_ReadPublic, handles: [nvIndex] }, (r) => {
    const bytes = r.tpm2b(`${f}.nvPublic`, MAX_NV_PUBLIC_BYTES);
    const pub = readNvPublic(bytes);
    const nvName = readName(r, `${f}.nvName`);
    // Name of an NV index = nameAlg || H_nameAlg(TPMS_NV_PUBLIC) (Part 1 §16).
    const h = hashAlgInfo(pub.nameAlg, "TPMS_NV_PUBLIC.nameAlg");
    const expected = Buffer.concat([nvName.subarray(0, 2), createHash(h.node).update(bytes).digest()]);
    if (nvName.length !== 2 + h.size || nvName.readUInt16BE(0) !== pub.nameAlg || !expected.equals(nvName)) {
      throw malformed(`${f}.nvName`, "does not match the NV public area");
    }
    if (pub.nvIndex !== nvIndex) throw malformed(`${f}.nvPublic.nvIndex`, `0x${pub.nvIndex.toString(16)}`);
    return { ...pub, name: nvName };
  });
  return value;
}

export interface NvReadOptions {
  /** Defaults to the index itself (authread); TPM_RH_OWNER for ownerread. */
  readonly authHandle?: number;
  readonly auth?: Authorization;
  readonly offset?: number;
}

/**
 * Reads `size` bytes in chunks of at most `maxChunk` (TPM_PT_NV_BUFFER_MAX): a TPM refuses
 * a larger NV_Read with TPM_RC_VALUE, and real EK certificates are bigger than one chunk.
 */
export async function nvRead(
  tpm: CommandRunner,
  nvIndex: number,
  size: number,
  maxChunk: number,
  opts: NvReadOptions = {},
): Promise<Buffer> {
  const name = "TPM2_NV_Read";
  if (!Number.isInteger(maxChunk) || maxChunk < 1) throw malformed(`${name}.size`, `chunk size ${maxChunk}`);
  if (!Number.isInteger(size) || size < 0) throw malformed(`${name}.size`, `${size} bytes`);
  const chunk = Math.min(maxChunk, MAX_NV_BUFFER_BYTES);
  const start = opts.offset ?? 0;
  const parts: Buffer[] = [];
  for (let done = 0; done < size; ) {
    const want = Math.min(chunk, size - done);
    const params = new TpmWriter()
      .u16(want, `${name}.size`)
      .u16(start + done, `${name}.offset`)
      .finish();
    const { value } = await tpm.run(
      {
        name,
        code: TPM_CC.NV_Read,
        handles: [opts.authHandle ?? nvIndex, nvIndex],
        auths: [opts.auth ?? EMPTY_PASSWORD],
        params,
      },
      (r) => r.tpm2b(`${name} response.data`, MAX_NV_BUFFER_BYTES),
    );
    if (value.length !== want)
      throw malformed(`${name} response.data.size`, `${value.length}, asked for ${want}`);
    parts.push(value);
    done += want;
  }
  return Buffer.concat(parts);
}
