import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { TPM_KEY_KINDS, type TpmKeyKind } from "../tpm/client/index.js";
import { AGENT_CODES, AgentError } from "./errors.js";
import { ensureDir, writeFileAtomic } from "./files.js";

// The enrolment state of one device, in a directory only its user can read (0700, files
// 0600): which CA, which device id, which AK. The AK is made persistent in the TPM with
// EvictControl (at akHandle, so later runs use it without recreating the EK) and its
// public/private blobs are kept too: the private blob is sealed to the EK, which a TPM
// clear does not change, so a cleared AK can be loaded again and re-persisted.
//
//   state.json      this file's data
//   ca-bundle.pem   the trust the operator gave at enrolment (--ca-bundle), for the CA's TLS
//   bundle.pem      the newest trust bundle the CA sent (roots may rotate)

export const STATE_VERSION = 1;
export const STATE_FILE = "state.json";
export const INITIAL_TRUST_FILE = "ca-bundle.pem";
export const LATEST_TRUST_FILE = "bundle.pem";
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export interface EnrolmentState {
  readonly version: typeof STATE_VERSION;
  /** The CA's origin, e.g. https://mayfly.example:8443. */
  readonly caUrl: string;
  /** The TPM as `--tpm` names it (device:/dev/tpmrm0, swtpm:unix:PATH, swtpm:HOST:PORT). */
  readonly tpm: string;
  readonly deviceId: string;
  readonly activationId: string;
  readonly ekKind: TpmKeyKind;
  readonly akKind: TpmKeyKind;
  /** TPM2B_PUBLIC of the EK, hex: the AK's parent, checked when the AK is loaded from blobs. */
  readonly ekPublic: string;
  /** The AK Name (hex), as both the TPM and the CA computed it. */
  readonly akName: string;
  /** TPM2B_PUBLIC and TPM2B_PRIVATE of the AK, hex. */
  readonly akPublic: string;
  readonly akPrivate: string;
  /** The persistent handle the AK lives at, or null to load it from the blobs each time. */
  readonly akHandle: number | null;
  readonly enrolledAt: string;
}

const HEX = /^(?:[0-9a-f]{2})+$/;

function invalid(dir: string, why: string): AgentError {
  return new AgentError(AGENT_CODES.stateInvalid, `${join(dir, STATE_FILE)}: ${why}`);
}

function parseState(dir: string, text: string): EnrolmentState {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw invalid(dir, "not JSON");
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw invalid(dir, "not a JSON object");
  if (o.version !== STATE_VERSION) throw invalid(dir, `version ${String(o.version)}, this agent reads 1`);
  const str = (k: string) => {
    const v = o[k];
    if (typeof v !== "string" || v.length === 0) throw invalid(dir, `"${k}" is not a string`);
    return v;
  };
  const hex = (k: string) => {
    const v = str(k);
    if (!HEX.test(v)) throw invalid(dir, `"${k}" is not lowercase hex`);
    return v;
  };
  const kind = (k: string) => {
    const v = str(k);
    if (!(TPM_KEY_KINDS as readonly string[]).includes(v)) throw invalid(dir, `"${k}" is not a key kind`);
    return v as TpmKeyKind;
  };
  const h = o.akHandle;
  if (h !== null && !(typeof h === "number" && Number.isInteger(h) && h >>> 24 === 0x81)) {
    throw invalid(dir, '"akHandle" is neither null nor a persistent handle (0x81xxxxxx)');
  }
  return {
    version: STATE_VERSION,
    caUrl: str("caUrl"),
    tpm: str("tpm"),
    deviceId: str("deviceId"),
    activationId: str("activationId"),
    ekKind: kind("ekKind"),
    akKind: kind("akKind"),
    ekPublic: hex("ekPublic"),
    akName: hex("akName"),
    akPublic: hex("akPublic"),
    akPrivate: hex("akPrivate"),
    akHandle: h as number | null,
    enrolledAt: str("enrolledAt"),
  };
}

/** The state in `dir`, or null when the directory holds no state yet. */
export async function readState(dir: string): Promise<EnrolmentState | null> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  await checkPrivate(dir);
  return parseState(dir, text);
}

/** Like readState, but a missing state is an error that says what to run. */
export async function requireState(dir: string): Promise<EnrolmentState> {
  const s = await readState(dir);
  if (!s) {
    throw new AgentError(
      AGENT_CODES.notEnrolled,
      `no enrolment in ${dir}: run "mayfly agent enrol --state ${dir} --ca URL --ca-bundle FILE" first`,
    );
  }
  return s;
}

/** Refuses a state directory others can write to (they could swap the AK or the CA). */
async function checkPrivate(dir: string): Promise<void> {
  const st = await stat(dir);
  if (st.mode & 0o022) {
    throw invalid(
      dir,
      `the directory is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`,
    );
  }
}

export async function ensureStateDir(dir: string): Promise<void> {
  await ensureDir(dir, DIR_MODE, true);
}

export async function writeState(dir: string, s: EnrolmentState): Promise<void> {
  await ensureStateDir(dir);
  await writeFileAtomic(join(dir, STATE_FILE), `${JSON.stringify(s, null, 2)}\n`, FILE_MODE);
}

export async function writeStateFile(dir: string, name: string, text: string): Promise<void> {
  await ensureStateDir(dir);
  await writeFileAtomic(join(dir, name), text, FILE_MODE);
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw e;
  }
}

/**
 * The PEM the agent trusts for the CA's TLS certificate: the operator's initial bundle plus
 * the newest one the CA sent over a connection that bundle authenticated.
 */
export async function readCaTrust(dir: string): Promise<string> {
  const initial = await readOptional(join(dir, INITIAL_TRUST_FILE));
  const latest = await readOptional(join(dir, LATEST_TRUST_FILE));
  const all = `${initial.trimEnd()}\n${latest.trimEnd()}\n`.trim();
  if (!all.includes("-----BEGIN CERTIFICATE-----")) {
    throw invalid(
      dir,
      `no CA trust: neither ${INITIAL_TRUST_FILE} nor ${LATEST_TRUST_FILE} holds a certificate`,
    );
  }
  return `${all}\n`;
}

export function parseHandle(text: string, what: string): number {
  const t = text.trim().toLowerCase();
  const n = /^0x[0-9a-f]{1,8}$/.test(t) ? Number.parseInt(t.slice(2), 16) : Number.NaN;
  if (!Number.isInteger(n) || n >>> 24 !== 0x81) {
    throw new AgentError(
      AGENT_CODES.usage,
      `${what} ${JSON.stringify(text)} is not a persistent handle (0x81xxxxxx)`,
    );
  }
  return n;
}

export const hexHandle = (h: number) => `0x${h.toString(16).padStart(8, "0")}`;
