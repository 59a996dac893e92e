import type { Clock } from "../runtime/clock.js";
import type { TpmClient, TpmKeyKind } from "../tpm/client/index.js";
import { type AgentLog, openAk, persistentName } from "./ak.js";
import type { CaClient } from "./ca-client.js";
import { enrolDevice } from "./enrol.js";
import { AGENT_CODES, AgentError } from "./errors.js";
import {
  type EnrolmentState,
  ensureStateDir,
  hexHandle,
  INITIAL_TRUST_FILE,
  readState,
  STATE_VERSION,
  writeState,
  writeStateFile,
} from "./state.js";

// `mayfly agent enrol`, idempotent: a state directory that already holds an enrolment with
// this CA, whose AK is still in the TPM with the same Name, is left alone. Otherwise the
// device is activated (enrol.ts) and the state written before the AK is made persistent, so
// an interrupted run leaves a state that openAk can finish (it re-persists from the blobs).

export const DEFAULT_AK_HANDLE = 0x81010002;

export interface EnsureEnrolledOptions {
  readonly tpm: TpmClient;
  readonly tpmSpec: string;
  readonly ca: CaClient;
  readonly stateDir: string;
  /** PEM trusted for the CA's TLS certificate, saved as the state's initial trust. */
  readonly caTrust: string;
  readonly clock: Clock;
  readonly ekKind?: TpmKeyKind;
  readonly akKind?: TpmKeyKind;
  /** Where the AK is made persistent; null keeps only the blobs. Default 0x81010002. */
  readonly akHandle?: number | null;
  /** Enrol again even when the state says this device is enrolled. */
  readonly force?: boolean;
  readonly log?: AgentLog;
}

export interface EnsureEnrolledResult {
  readonly state: EnrolmentState;
  /** True when the state already held a matching enrolment and nothing was done. */
  readonly alreadyEnrolled: boolean;
}

export async function ensureEnrolled(o: EnsureEnrolledOptions): Promise<EnsureEnrolledResult> {
  const { tpm, stateDir } = o;
  await ensureStateDir(stateDir);
  const existing = await readState(stateDir);
  if (existing && !o.force) {
    if (existing.caUrl !== o.ca.url) {
      throw new AgentError(
        AGENT_CODES.enrolledElsewhere,
        `${stateDir} is enrolled with ${existing.caUrl}, not ${o.ca.url}; use another --state, or --force to enrol again`,
      );
    }
    // Throws agent.ak_mismatch when the TPM no longer holds the enrolled AK.
    const ak = await openAk(tpm, existing, o.log);
    await ak.release();
    return { state: existing, alreadyEnrolled: true };
  }

  const akHandle = o.akHandle === undefined ? DEFAULT_AK_HANDLE : o.akHandle;
  if (akHandle !== null) {
    const there = await persistentName(tpm, akHandle);
    const ours =
      existing && existing.akHandle === akHandle && there?.equals(Buffer.from(existing.akName, "hex"));
    if (there && !ours) {
      throw new AgentError(
        AGENT_CODES.handleOccupied,
        `${hexHandle(akHandle)} already holds a key (Name ${there.toString("hex")}) that this state did not put there; choose another --ak-handle`,
      );
    }
  }

  const e = await enrolDevice({
    tpm,
    ca: o.ca,
    ...(o.ekKind ? { ekKind: o.ekKind } : {}),
    ...(o.akKind ? { akKind: o.akKind } : {}),
  });
  try {
    const state: EnrolmentState = {
      version: STATE_VERSION,
      caUrl: o.ca.url,
      tpm: o.tpmSpec,
      deviceId: e.deviceId,
      activationId: e.activationId,
      ekKind: o.ekKind ?? "rsa2048",
      akKind: o.akKind ?? "ecc256",
      ekPublic: e.ekPublic.toString("hex"),
      akName: e.akName.toString("hex"),
      akPublic: e.akPublic.toString("hex"),
      akPrivate: e.akPrivate.toString("hex"),
      akHandle,
      enrolledAt: new Date(o.clock.now()).toISOString(),
    };
    await writeStateFile(stateDir, INITIAL_TRUST_FILE, o.caTrust);
    await writeState(stateDir, state);
    if (akHandle !== null) {
      // Our previous AK (a --force re-enrolment) makes way for the new one.
      if (await persistentName(tpm, akHandle)) await tpm.evictControl(akHandle, akHandle);
      await tpm.evictControl(e.akHandle, akHandle);
    }
    return { state, alreadyEnrolled: false };
  } finally {
    await tpm.flushContext(e.akHandle).catch(() => undefined);
    await tpm.flushContext(e.ekHandle).catch(() => undefined);
  }
}
