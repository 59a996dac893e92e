import { TpmWriter } from "../buffer-writer.js";
import { MAX_DIGEST_BYTES, TPM_RH } from "../constants.js";
import { malformed } from "../errors.js";
import { type Authorization, type CommandRunner, EMPTY_PASSWORD, NO_PARAMETERS } from "./command.js";
import { TPM_CC, TPM_SU } from "./constants.js";

// Start-up, shutdown, randomness and handle management (Part 3 §9, §16.1, §28).

export type StartupType = "clear" | "state";

export async function startup(tpm: CommandRunner, type: StartupType = "clear"): Promise<void> {
  const params = new TpmWriter().u16(
    type === "clear" ? TPM_SU.CLEAR : TPM_SU.STATE,
    "TPM2_Startup.startupType",
  );
  await tpm.run({ name: "TPM2_Startup", code: TPM_CC.Startup, params: params.finish() }, NO_PARAMETERS);
}

/**
 * An orderly shutdown. Without it, the next start-up counts a dictionary-attack failure for
 * every DA-protected object used (gotcha G18), and a few restarts lock the AK out.
 */
export async function shutdown(tpm: CommandRunner, type: StartupType = "clear"): Promise<void> {
  const params = new TpmWriter().u16(
    type === "clear" ? TPM_SU.CLEAR : TPM_SU.STATE,
    "TPM2_Shutdown.shutdownType",
  );
  await tpm.run({ name: "TPM2_Shutdown", code: TPM_CC.Shutdown, params: params.finish() }, NO_PARAMETERS);
}

/** Up to one digest of TPM randomness per call (the TPM may return fewer bytes; checked). */
export async function getRandom(tpm: CommandRunner, bytes: number): Promise<Buffer> {
  const name = "TPM2_GetRandom";
  const params = new TpmWriter().u16(bytes, `${name}.bytesRequested`).finish();
  const { value } = await tpm.run({ name, code: TPM_CC.GetRandom, params }, (r) =>
    r.tpm2b(`${name} response.randomBytes`, MAX_DIGEST_BYTES),
  );
  if (value.length !== bytes)
    throw malformed(`${name} response.randomBytes.size`, `${value.length} of ${bytes}`);
  return value;
}

/** Frees a transient object or a session; the handle is a parameter here, not a handle. */
export async function flushContext(tpm: CommandRunner, handle: number): Promise<void> {
  const params = new TpmWriter().u32(handle, "TPM2_FlushContext.flushHandle").finish();
  await tpm.run({ name: "TPM2_FlushContext", code: TPM_CC.FlushContext, params }, NO_PARAMETERS);
}

/**
 * Makes a loaded object persistent at `persistentHandle`, or (given a persistent handle as
 * objectHandle and the same persistentHandle) removes it. Authorized by the owner.
 */
export interface EvictOptions {
  /** TPM_RH_OWNER (default) or TPM_RH_PLATFORM. */
  readonly hierarchy?: number;
  readonly auth?: Authorization;
}

export async function evictControl(
  tpm: CommandRunner,
  objectHandle: number,
  persistentHandle: number,
  opts: EvictOptions = {},
): Promise<void> {
  const params = new TpmWriter().u32(persistentHandle, "TPM2_EvictControl.persistentHandle").finish();
  await tpm.run(
    {
      name: "TPM2_EvictControl",
      code: TPM_CC.EvictControl,
      handles: [opts.hierarchy ?? TPM_RH.OWNER, objectHandle],
      auths: [opts.auth ?? EMPTY_PASSWORD],
      params,
    },
    NO_PARAMETERS,
  );
}
