import { createEk, TPM_HT, type TpmClient, withUserAuth } from "../tpm/client/index.js";
import { AGENT_CODES, AgentError } from "./errors.js";
import type { EnrolmentState } from "./state.js";
import { hexHandle } from "./state.js";

// The enrolled AK, ready to sign: at its persistent handle (checked by Name every time, so a
// different key there is never used), or loaded from the saved blobs under the EK (after a
// TPM clear evicted it, or when the state keeps no persistent handle).

export type AgentLog = (level: "info" | "warn" | "error", message: string) => void;

export interface OpenAk {
  readonly handle: number;
  /** Flushes a transient AK; nothing to do for a persistent one. */
  release(): Promise<void>;
}

const noop = async () => undefined;

async function persistentHandles(tpm: TpmClient): Promise<number[]> {
  return tpm.listHandles(TPM_HT.PERSISTENT);
}

export async function isPersistentHandleUsed(tpm: TpmClient, handle: number): Promise<boolean> {
  return (await persistentHandles(tpm)).includes(handle);
}

/** The Name of the object at a persistent handle, or null when the handle is free. */
export async function persistentName(tpm: TpmClient, handle: number): Promise<Buffer | null> {
  if (!(await isPersistentHandleUsed(tpm, handle))) return null;
  return (await tpm.readPublic(handle)).name;
}

function mismatch(detail: string, cause?: unknown): AgentError {
  return new AgentError(
    AGENT_CODES.akMismatch,
    `${detail}; enrol this device again ("mayfly agent enrol --force")`,
    cause === undefined ? {} : { cause },
  );
}

/** Recreates the EK, checks it is the enrolled one, and loads the AK blobs under it (transient). */
export async function loadAkFromBlobs(tpm: TpmClient, s: EnrolmentState): Promise<number> {
  const ek = await createEk(tpm, s.ekKind);
  try {
    if (!ek.publicBytes.equals(Buffer.from(s.ekPublic, "hex"))) {
      throw mismatch("this TPM's endorsement key is not the one this device enrolled with");
    }
    let loaded: { handle: number; name: Buffer };
    try {
      loaded = await withUserAuth(tpm, ek.public, (auth) =>
        tpm.load(ek.handle, Buffer.from(s.akPrivate, "hex"), Buffer.from(s.akPublic, "hex"), auth),
      );
    } catch (e) {
      throw mismatch("the saved AK does not load under this TPM's endorsement key", e);
    }
    if (!loaded.name.equals(Buffer.from(s.akName, "hex"))) {
      await tpm.flushContext(loaded.handle).catch(() => undefined);
      throw mismatch("the saved AK loads with another Name than the enrolled one");
    }
    return loaded.handle;
  } finally {
    await tpm.flushContext(ek.handle).catch(() => undefined);
  }
}

/**
 * The AK for one signing operation. A persistent AK whose handle is empty is restored from
 * the blobs and persisted again; a different key at the handle is refused, never replaced.
 */
export async function openAk(tpm: TpmClient, s: EnrolmentState, log?: AgentLog): Promise<OpenAk> {
  const want = Buffer.from(s.akName, "hex");
  if (s.akHandle === null) {
    const handle = await loadAkFromBlobs(tpm, s);
    return { handle, release: () => tpm.flushContext(handle) };
  }
  const name = await persistentName(tpm, s.akHandle);
  if (name) {
    if (!name.equals(want)) {
      throw mismatch(
        `the key at ${hexHandle(s.akHandle)} (Name ${name.toString("hex")}) is not the enrolled AK (${s.akName})`,
      );
    }
    return { handle: s.akHandle, release: noop };
  }
  log?.(
    "warn",
    `the AK is no longer at ${hexHandle(s.akHandle)}: loading it from the state and persisting it again`,
  );
  const transient = await loadAkFromBlobs(tpm, s);
  try {
    await tpm.evictControl(transient, s.akHandle);
  } finally {
    await tpm.flushContext(transient).catch(() => undefined);
  }
  return { handle: s.akHandle, release: noop };
}
