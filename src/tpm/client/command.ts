import type { Random } from "../../runtime/clock.js";
import { TpmReader } from "../buffer-reader.js";
import { TpmWriter } from "../buffer-writer.js";
import { MAX_DIGEST_BYTES } from "../constants.js";
import { malformed } from "../errors.js";
import { hashAlgInfo } from "../hash-algs.js";
import { TPM_RS_PW, TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS, TPMA_SESSION } from "./constants.js";
import { commandFailed } from "./response-code.js";

// The command/response envelope (Part 1 §18, Part 3 §4): header, handle area, authorization
// area, parameters. Responses are parsed strictly: the size header must equal the bytes
// received, there must be exactly one response session per command session, and the
// command's parse function must consume its parameter area to the last byte.

/** A policy session this client started (StartAuthSession); its hash sizes nonceCaller. */
export interface PolicySession {
  readonly handle: number;
  readonly authHash: number;
}

/** How one handle is authorized. Passwords are sent in the clear (TPM_RS_PW), as ESYS does. */
export type Authorization =
  | { readonly kind: "password"; readonly value?: Uint8Array }
  | { readonly kind: "policy"; readonly session: PolicySession };

export const EMPTY_PASSWORD: Authorization = { kind: "password" };

export function policyAuth(session: PolicySession): Authorization {
  return { kind: "policy", session };
}

export interface CommandSpec {
  /** "TPM2_Certify": names errors and fields. */
  readonly name: string;
  readonly code: number;
  readonly handles?: readonly number[];
  /** One per authorized handle, in handle order; any at all makes a TPM_ST_SESSIONS command. */
  readonly auths?: readonly Authorization[];
  readonly params?: Buffer;
  /** Handles in the response: 1 for CreatePrimary, Load and StartAuthSession. */
  readonly responseHandles?: number;
}

export interface CommandResult<T> {
  readonly handles: number[];
  readonly value: T;
}

/** What the per-command modules need from a client: send one command, parse its answer. */
export interface CommandRunner {
  run<T>(spec: CommandSpec, parse: (r: TpmReader) => T): Promise<CommandResult<T>>;
}

/** For commands whose response has no parameters. */
export const NO_PARAMETERS = (_: TpmReader): void => undefined;

/** Auth values and nonces are at most a digest (TPM2B_AUTH, TPM2B_NONCE). */
const MAX_AUTH_BYTES = MAX_DIGEST_BYTES;

function writeAuth(w: TpmWriter, a: Authorization, random: Random, field: string): void {
  if (a.kind === "password") {
    w.u32(TPM_RS_PW, `${field}.sessionHandle`)
      .u16(0, `${field}.nonce.size`)
      .u8(0, `${field}.sessionAttributes`);
    w.tpm2b(a.value ?? Buffer.alloc(0), `${field}.hmac`, MAX_AUTH_BYTES);
    return;
  }
  // An unbound, unsalted policy session without PolicyAuthValue/PolicyPassword has no HMAC
  // key: the TPM checks only the policy digest, so the HMAC stays empty. The session is kept
  // (continueSession) so the caller flushes it whatever the outcome.
  const nonce = random.bytes(hashAlgInfo(a.session.authHash, `${field}.authHash`).size);
  w.u32(a.session.handle, `${field}.sessionHandle`).tpm2b(nonce, `${field}.nonce`, MAX_AUTH_BYTES);
  w.u8(TPMA_SESSION.continueSession, `${field}.sessionAttributes`).u16(0, `${field}.hmac.size`);
}

export function encodeCommand(spec: CommandSpec, random: Random): Buffer {
  const f = spec.name;
  const body = new TpmWriter().u32(spec.code, `${f}.commandCode`);
  for (const [i, h] of (spec.handles ?? []).entries()) body.u32(h, `${f}.handles[${i}]`);
  const auths = spec.auths ?? [];
  if (auths.length > 0) {
    const area = new TpmWriter();
    auths.forEach((a, i) => {
      writeAuth(area, a, random, `${f}.authorization[${i}]`);
    });
    const bytes = area.finish();
    body.u32(bytes.length, `${f}.authorizationSize`).bytes(bytes);
  }
  body.bytes(spec.params ?? Buffer.alloc(0));
  const rest = body.finish();
  return new TpmWriter()
    .u16(auths.length > 0 ? TPM_ST_SESSIONS : TPM_ST_NO_SESSIONS, `${f}.tag`)
    .u32(2 + 4 + rest.length, `${f}.commandSize`)
    .bytes(rest)
    .finish();
}

/** The response code, read without judging the rest of the response (retry decisions). */
export function responseCode(response: Buffer): number {
  return response.length >= 10 ? response.readUInt32BE(6) : -1;
}

/**
 * Parses a whole response. A non-zero code throws tpm.command_failed; anything malformed
 * throws tpm.malformed naming the command and field.
 */
export function decodeResponse<T>(
  spec: CommandSpec,
  response: Buffer,
  parse: (r: TpmReader) => T,
): CommandResult<T> {
  const f = `${spec.name} response`;
  const r = new TpmReader(response);
  const tag = r.u16(`${f}.tag`);
  const size = r.u32(`${f}.responseSize`);
  if (size !== response.length) {
    throw malformed(`${f}.responseSize`, `header says ${size}, ${response.length} bytes were received`);
  }
  const rc = r.u32(`${f}.responseCode`);
  if (rc !== 0) {
    if (tag !== TPM_ST_NO_SESSIONS || size !== 10) {
      throw malformed(
        `${f}.tag`,
        `an error response must be a bare 10-byte header (rc 0x${rc.toString(16)})`,
      );
    }
    throw commandFailed(spec.name, rc);
  }
  const auths = spec.auths ?? [];
  const expectedTag = auths.length > 0 ? TPM_ST_SESSIONS : TPM_ST_NO_SESSIONS;
  if (tag !== expectedTag)
    throw malformed(`${f}.tag`, `0x${tag.toString(16)}, expected 0x${expectedTag.toString(16)}`);
  const handles: number[] = [];
  for (let i = 0; i < (spec.responseHandles ?? 0); i++) handles.push(r.u32(`${f}.handles[${i}]`));
  let params: Buffer;
  if (auths.length > 0) {
    params = r.bytes(r.u32(`${f}.parameterSize`), `${f}.parameters`);
    auths.forEach((a, i) => {
      const s = `${f}.authorization[${i}]`;
      const nonce = r.tpm2b(`${s}.nonce`, MAX_AUTH_BYTES);
      r.u8(`${s}.sessionAttributes`);
      const hmac = r.tpm2b(`${s}.hmac`, MAX_AUTH_BYTES);
      if (a.kind === "password" && (nonce.length !== 0 || hmac.length !== 0)) {
        throw malformed(s, "a password session answers with an empty nonce and HMAC");
      }
    });
    r.expectEnd(f);
  } else {
    params = r.bytes(r.remaining, `${f}.parameters`);
  }
  const p = new TpmReader(params);
  const value = parse(p);
  p.expectEnd(`${f}.parameters`);
  return { handles, value };
}
