import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isMayflyError, type MayflyError } from "../../../src/errors/index.js";
import { TpmClient } from "../../../src/tpm/client/index.js";
import { TPM_ALG, TPM_ST } from "../../../src/tpm/index.js";
import { fx, fxText } from "../helpers/fixtures.js";
import { seededRandom } from "../helpers/seeded-random.js";
import { errorResponse, ScriptedTransport } from "./fake-transport.js";

// The command envelope against the bytes of a real exchange: the TPM2_Certify that
// tpm-flow.sh sent with tpm2_send, and swtpm's answer. Then the response, broken one way at a
// time: each must fail with a typed error naming the field, never parse "mostly".

const local = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const NONCE = Buffer.from(fxText("swtpm/certify/nonce.hex"), "hex");
const CMD = local("ecc-key.by-rsa-ak.cmd");
const RESP = local("ecc-key.by-rsa-ak.resp");

function client(responses: Buffer[], opts: { retries?: number } = {}) {
  const transport = new ScriptedTransport(responses);
  return {
    transport,
    tpm: new TpmClient(transport, { random: seededRandom("codec"), retryDelayMs: 0, ...opts }),
  };
}

async function rejects(p: Promise<unknown>): Promise<MayflyError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isMayflyError(e), `expected a MayflyError, got ${String(e)}`).toBe(true);
  return e as MayflyError;
}

/** The fixture response with its size header rewritten to its (new) length. */
function resized(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out.writeUInt32BE(out.length, 2);
  return out;
}

describe("TPM2_Certify envelope against a real swtpm exchange", () => {
  it("marshals the same command bytes tpm2_send sent", async () => {
    const { tpm, transport } = client([RESP]);
    const a = await tpm.certify(0x81000002, 0x81010002, NONCE);
    expect(transport.sent[0]?.equals(CMD)).toBe(true);
    expect(a.attestBytes.equals(fx("swtpm/certify/ecc-key.by-rsa-ak.attest"))).toBe(true);
    expect(a.signatureBytes.equals(fx("swtpm/certify/ecc-key.by-rsa-ak.sig"))).toBe(true);
    expect(a.attest.type).toBe(TPM_ST.ATTEST_CERTIFY);
    expect(a.signature.sigAlg).toBe(TPM_ALG.RSASSA);
  });

  it("parses the ECDSA-signed response too", async () => {
    const { tpm, transport } = client([local("rsa-key.by-ecc-ak.resp")]);
    const a = await tpm.certify(0x81000003, 0x81010003, NONCE);
    expect(transport.sent[0]?.equals(local("rsa-key.by-ecc-ak.cmd"))).toBe(true);
    expect(a.signatureBytes.equals(fx("swtpm/certify/rsa-key.by-ecc-ak.sig"))).toBe(true);
  });

  const broken: Array<[string, Buffer, string | RegExp]> = [
    ["one byte short", RESP.subarray(0, RESP.length - 1), "TPM2_Certify response.responseSize"],
    ["one byte extra", Buffer.concat([RESP, Buffer.from([0])]), "TPM2_Certify response.responseSize"],
    [
      "one byte extra, size adjusted",
      resized(Buffer.concat([RESP, Buffer.from([0])])),
      "TPM2_Certify response",
    ],
    ["a session missing, size adjusted", resized(RESP.subarray(0, RESP.length - 5)), /authorization\[1\]/],
    ["header only", resized(RESP.subarray(0, 10)), "TPM2_Certify response.parameterSize"],
  ];
  it.each(broken)("refuses a response %s", async (_, bytes, field) => {
    const { tpm } = client([bytes]);
    const e = await rejects(tpm.certify(0x81000002, 0x81010002, NONCE));
    expect(e.code).toBe("tpm.malformed");
    if (typeof field === "string") expect(e.field).toBe(field);
    else expect(e.field).toMatch(field);
  });

  it("refuses a parameterSize that does not cover the parameters exactly", async () => {
    for (const delta of [-1, 1]) {
      const b = Buffer.from(RESP);
      b.writeUInt32BE(b.readUInt32BE(10) + delta, 10);
      const e = await rejects(client([b]).tpm.certify(0x81000002, 0x81010002, NONCE));
      expect(e.code).toBe("tpm.malformed");
    }
  });

  it("refuses a success response without sessions to a command with sessions", async () => {
    const b = Buffer.from(RESP);
    b.writeUInt16BE(0x8001, 0);
    const e = await rejects(client([b]).tpm.certify(0x81000002, 0x81010002, NONCE));
    expect(e.field).toBe("TPM2_Certify response.tag");
  });

  it("refuses a password session answered with an HMAC", async () => {
    const b = Buffer.concat([RESP.subarray(0, RESP.length - 2), Buffer.from([0, 1, 0xaa])]);
    const e = await rejects(client([resized(b)]).tpm.certify(0x81000002, 0x81010002, NONCE));
    expect(e.field).toBe("TPM2_Certify response.authorization[1]");
  });

  it("turns an error code into tpm.command_failed, and refuses an error with a body", async () => {
    const failed = await rejects(client([errorResponse(0x9a2)]).tpm.certify(1, 2, NONCE));
    expect(failed.code).toBe("tpm.command_failed");
    expect(failed.extra).toMatchObject({ rc: 0x9a2, name: "TPM_RC_BAD_AUTH", session: 1 });
    const withBody = resized(Buffer.concat([errorResponse(0x9a2), Buffer.alloc(4)]));
    expect((await rejects(client([withBody]).tpm.certify(1, 2, NONCE))).code).toBe("tpm.malformed");
  });

  it("resends after TPM_RC_RETRY / YIELDED / TESTING, and gives up after the configured retries", async () => {
    const ok = client([errorResponse(0x922), errorResponse(0x908), errorResponse(0x90a), RESP]);
    await ok.tpm.certify(0x81000002, 0x81010002, NONCE);
    expect(ok.transport.sent).toHaveLength(4);
    expect(ok.transport.sent.every((c) => c.equals(CMD))).toBe(true);
    const stuck = client([errorResponse(0x922), errorResponse(0x922), errorResponse(0x922)], { retries: 2 });
    const e = await rejects(stuck.tpm.certify(0x81000002, 0x81010002, NONCE));
    expect(e.extra).toMatchObject({ name: "TPM_RC_RETRY" });
    expect(stuck.transport.sent).toHaveLength(3);
  });

  it("checks caller-supplied TPM2Bs before sending anything", async () => {
    const { tpm, transport } = client([]);
    const blob = Buffer.from([0x00, 0x05, 1, 2, 3]); // says 5, holds 3
    const e = await rejects(tpm.activateCredential(1, 2, blob, Buffer.from([0, 1, 9])));
    expect(e.field).toBe("TPM2_ActivateCredential.credentialBlob.size");
    expect(transport.sent).toHaveLength(0);
  });
});
