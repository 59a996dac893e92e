import type { Random } from "../../runtime/clock.js";
import type { TpmReader } from "../buffer-reader.js";
import type { PcrSelection } from "../pcr.js";
import type { TpmtPublic } from "../public.js";
import * as att from "./attestation-commands.js";
import * as cap from "./capability-commands.js";
import {
  type Authorization,
  type CommandResult,
  type CommandRunner,
  type CommandSpec,
  decodeResponse,
  encodeCommand,
  type PolicySession,
  responseCode,
} from "./command.js";
import { TPM_PT } from "./constants.js";
import * as life from "./lifecycle-commands.js";
import * as nv from "./nv-commands.js";
import * as obj from "./object-commands.js";
import { RETRYABLE_RCS } from "./response-code.js";
import * as ses from "./session-commands.js";
import type { TpmTransport } from "./transport.js";

export interface TpmClientOptions {
  /** nonceCaller for sessions. Injected, like all randomness below the server. */
  readonly random: Random;
  /** Resends after TPM_RC_RETRY / YIELDED / TESTING (gotcha G19); default 20. */
  readonly retries?: number;
  /** Pause before each resend, in ms; default 10 (libtpms needs a moment to finish NV writes). */
  readonly retryDelayMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Typed TPM 2.0 commands over a transport. Objects and sessions it creates are the caller's
 * to flush: without a resource manager (swtpm) a TPM holds only a few (3 objects on swtpm).
 */
export class TpmClient implements CommandRunner {
  private nvBufferMax: number | undefined;

  constructor(
    readonly transport: TpmTransport,
    private readonly opts: TpmClientOptions,
  ) {}

  async run<T>(spec: CommandSpec, parse: (r: TpmReader) => T): Promise<CommandResult<T>> {
    const command = encodeCommand(spec, this.opts.random);
    const retries = this.opts.retries ?? 20;
    for (let attempt = 0; ; attempt++) {
      const response = await this.transport.send(command);
      if (attempt < retries && RETRYABLE_RCS.has(responseCode(response))) {
        await sleep(this.opts.retryDelayMs ?? 10);
        continue;
      }
      return decodeResponse(spec, response, parse);
    }
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  startup(type?: life.StartupType) {
    return life.startup(this, type);
  }
  shutdown(type?: life.StartupType) {
    return life.shutdown(this, type);
  }
  getRandom(bytes: number) {
    return life.getRandom(this, bytes);
  }
  flushContext(handle: number) {
    return life.flushContext(this, handle);
  }
  evictControl(objectHandle: number, persistentHandle: number, opts?: life.EvictOptions) {
    return life.evictControl(this, objectHandle, persistentHandle, opts);
  }

  listHandles(first: number) {
    return cap.listHandles(this, first);
  }
  getProperties(first: number, count: number) {
    return cap.getProperties(this, first, count);
  }
  getProperty(property: number) {
    return cap.getProperty(this, property);
  }
  getPcrBanks() {
    return cap.getPcrBanks(this);
  }

  nvReadPublic(nvIndex: number) {
    return nv.nvReadPublic(this, nvIndex);
  }
  /** Reads `size` bytes (default: the whole index), chunked by TPM_PT_NV_BUFFER_MAX. */
  async nvRead(nvIndex: number, opts: nv.NvReadOptions & { readonly size?: number } = {}): Promise<Buffer> {
    const size = opts.size ?? (await this.nvReadPublic(nvIndex)).dataSize - (opts.offset ?? 0);
    this.nvBufferMax ??= await this.getProperty(TPM_PT.NV_BUFFER_MAX);
    return nv.nvRead(this, nvIndex, size, this.nvBufferMax, opts);
  }

  createPrimary(hierarchy: number, template: TpmtPublic, auth?: Authorization) {
    return obj.createPrimary(this, hierarchy, template, auth);
  }
  create(parent: number, template: TpmtPublic, parentAuth?: Authorization) {
    return obj.create(this, parent, template, parentAuth);
  }
  load(parent: number, privateBytes: Uint8Array, publicBytes: Uint8Array, parentAuth?: Authorization) {
    return obj.load(this, parent, privateBytes, publicBytes, parentAuth);
  }
  readPublic(handle: number) {
    return obj.readPublic(this, handle);
  }

  certify(objectHandle: number, signHandle: number, qualifyingData: Uint8Array, opts?: att.CertifyOptions) {
    return att.certify(this, objectHandle, signHandle, qualifyingData, opts);
  }
  quote(
    signHandle: number,
    qualifyingData: Uint8Array,
    pcrs: readonly PcrSelection[],
    opts?: att.SignOptions,
  ) {
    return att.quote(this, signHandle, qualifyingData, pcrs, opts);
  }
  sign(keyHandle: number, digest: Uint8Array, opts?: att.SignOptions) {
    return att.sign(this, keyHandle, digest, opts);
  }
  pcrRead(selection: readonly PcrSelection[]) {
    return att.pcrRead(this, selection);
  }

  startAuthSession(type: ses.SessionType, authHash?: number) {
    return ses.startAuthSession(this, this.opts.random, type, authHash);
  }
  policySecret(authHandle: number, session: PolicySession, auth?: Authorization) {
    return ses.policySecret(this, authHandle, session, auth);
  }
  policyGetDigest(session: PolicySession) {
    return ses.policyGetDigest(this, session);
  }
  activateCredential(
    activateHandle: number,
    keyHandle: number,
    credentialBlob: Uint8Array,
    encryptedSecret: Uint8Array,
    auths?: ses.ActivateAuths,
  ) {
    return ses.activateCredential(this, activateHandle, keyHandle, credentialBlob, encryptedSecret, auths);
  }
}
