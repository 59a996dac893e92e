import type { KeyObject } from "node:crypto";
import { createSrk, type TpmClient, type TpmKeyKind } from "../tpm/client/index.js";
import { TPMA_OBJECT } from "../tpm/index.js";
import { type AgentLog, openAk, persistentName } from "./ak.js";
import type { CaClient, IssuedCertificate } from "./ca-client.js";
import { AGENT_CODES, AgentError, errorCode } from "./errors.js";
import { issueBoundKey, issueTpmKey } from "./issue.js";
import { type EnrolmentState, hexHandle } from "./state.js";

// One certificate for an enrolled device, in the key mode the agent's profile allows:
//   tpm   - a new key made in the TPM, certified by the AK, CSR signed in the TPM; persisted
//           at one of two handles, alternately, so the previous key (whose certificate is
//           still valid until the next renewal) stays usable while the new one takes over;
//   bound - a fresh software key, bound to the device by an AK quote; it never touches disk
//           here (the caller writes it 0600 or keeps it in memory);
//   auto  - tpm, falling back to bound for good when the CA says the profile does not
//           allow tpm-certify or TPM-resident keys.

export type KeyMode = "tpm" | "bound" | "auto";
export type KeyResidency = "tpm" | "bound";

export interface Issued extends IssuedCertificate {
  readonly keyResidency: KeyResidency;
  /** bound: the private key. */
  readonly privateKey?: KeyObject;
  /** tpm: the persistent handle of the key. */
  readonly keyHandle?: number;
}

export const DEFAULT_KEY_HANDLES: readonly [number, number] = [0x81000100, 0x81000101];

export interface IssuerOptions {
  readonly tpm: TpmClient;
  readonly state: EnrolmentState;
  /** The CA client to use for this attempt (it may change when the trust bundle does). */
  readonly client: () => CaClient;
  readonly agentId: string;
  readonly mode: KeyMode;
  /** tpm: the key's kind; default ecc256 (P-256). */
  readonly keyKind?: TpmKeyKind;
  /**
   * tpm: the two persistent handles used in turn; default 0x81000100 and 0x81000101. Give each
   * agent on a device its own pair (claimKeyHandles), or they evict each other's keys.
   */
  readonly keyHandles?: readonly [number, number];
  /** tpm: the handle the current certificate's key is at (from DIR/key.handle): use the other first. */
  readonly currentKeyHandle?: number | null;
  readonly lifetimeSeconds?: number;
  readonly log?: AgentLog;
}

const FALLBACK_CODES = new Set(["attestation.format_not_allowed", "attestation.residency_not_allowed"]);

/** The attributes of the keys this agent makes (templates.ts signingKeyTemplate): safe to replace. */
const OUR_KEY_ATTRS =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.sign;

export class Issuer {
  #mode: KeyMode;
  #next: 0 | 1;
  readonly #handles: readonly [number, number];

  constructor(private readonly o: IssuerOptions) {
    this.#mode = o.mode;
    this.#handles = o.keyHandles ?? DEFAULT_KEY_HANDLES;
    if (this.#handles[0] === this.#handles[1] || this.#handles.includes(o.state.akHandle ?? -1)) {
      throw new AgentError(
        AGENT_CODES.usage,
        "the two key handles must differ from each other and from the AK's",
      );
    }
    this.#next = o.currentKeyHandle === this.#handles[0] ? 1 : 0;
  }

  /** The residency the next attempt will use (auto starts as tpm). */
  get residency(): KeyResidency {
    return this.#mode === "bound" ? "bound" : "tpm";
  }

  async issue(): Promise<Issued> {
    if (this.#mode === "bound") return this.#bound();
    try {
      return await this.#tpmKey();
    } catch (e) {
      const code = errorCode(e);
      if (this.#mode !== "auto" || code === null || !FALLBACK_CODES.has(code)) throw e;
      this.o.log?.(
        "info",
        `the CA does not allow TPM-resident keys for this agent (${code}): using bound keys`,
      );
      this.#mode = "bound";
      return this.#bound();
    }
  }

  async #bound(): Promise<Issued> {
    const { tpm, state } = this.o;
    const ak = await openAk(tpm, state, this.o.log);
    try {
      const r = await issueBoundKey({
        tpm,
        ca: this.o.client(),
        agentId: this.o.agentId,
        akHandle: ak.handle,
        ...(this.o.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: this.o.lifetimeSeconds }),
      });
      return { ...r, keyResidency: "bound", privateKey: r.privateKey };
    } finally {
      await ak.release().catch(() => undefined);
    }
  }

  async #tpmKey(): Promise<Issued> {
    const { tpm, state } = this.o;
    const target = this.#handles[this.#next];
    // Before asking the CA for anything: a handle held by someone else's key stops us here.
    await this.#checkReplaceable(target);
    const ak = await openAk(tpm, state, this.o.log);
    try {
      const srk = await createSrk(tpm);
      try {
        const r = await issueTpmKey({
          tpm,
          ca: this.o.client(),
          agentId: this.o.agentId,
          akHandle: ak.handle,
          parentHandle: srk.handle,
          kind: this.o.keyKind ?? "ecc256",
          ...(this.o.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: this.o.lifetimeSeconds }),
        });
        try {
          if (await persistentName(tpm, target)) await tpm.evictControl(target, target);
          await tpm.evictControl(r.keyHandle, target);
        } finally {
          await tpm.flushContext(r.keyHandle).catch(() => undefined);
        }
        this.#next = this.#next === 0 ? 1 : 0;
        const { keyPrivate: _p, keyPublic: _k, keyName: _n, keyHandle: _h, ...cert } = r;
        return { ...cert, keyResidency: "tpm", keyHandle: target };
      } finally {
        await tpm.flushContext(srk.handle).catch(() => undefined);
      }
    } finally {
      await ak.release().catch(() => undefined);
    }
  }

  async #checkReplaceable(handle: number): Promise<void> {
    const { tpm } = this.o;
    if (!(await persistentName(tpm, handle))) return;
    const pub = (await tpm.readPublic(handle)).public;
    const attrs = pub.objectAttributes & ~TPMA_OBJECT.noDA;
    if (attrs !== OUR_KEY_ATTRS || pub.authPolicy.length !== 0) {
      throw new AgentError(
        AGENT_CODES.handleOccupied,
        `${hexHandle(handle)} holds a key this agent did not make; choose other handles with --key-handles`,
      );
    }
  }
}
