import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CaClient, enrolDevice } from "../../src/agent/index.js";
import { akQualifiedNameUnderEk } from "../../src/devices/ak-policy.js";
import { ekPublicKeyHash } from "../../src/devices/ek-trust.js";
import { createEk, readEkCertificate, type TpmClient } from "../../src/tpm/client/index.js";
import { marshalTpm2bPublic } from "../../src/tpm/index.js";
import { expectAccepted, jwks, mdmKey, signed } from "../e2e-mdm/helpers.js";
import { AK_ATTRS, simKey } from "../evidence/helpers/tpm-sim.js";
import { startTestCa, type TestCa } from "../helpers/test-ca.js";
import { clientFor, leftovers } from "../tpm/client/live-client.js";
import { activateCredentialSoftware } from "../tpm/helpers/activate-credential.js";
import { Swtpm } from "../tpm/helpers/swtpm.js";
import {
  auditMark,
  auditSince,
  caClientFor,
  expectDenied,
  SHIPPED_EK_TRUST,
  tpmCaConfig,
} from "./helpers/live.js";
import { simEk } from "./helpers/sim-device.js";

// An EK the MDM vouched for (issue 8): the CA trusts no manufacturer that made it (the
// shipped vendor roots, no swtpm CA), so activation is refused, until the MDM's signed
// device.enrolled names the EK; then activation is accepted because the MDM vouched, and
// links to the device the MDM created. After device.unenrolled the same EK is refused again.
// Once with a live swtpm (the MDM sends its EK certificate), once with the software-simulated
// device of ./helpers/sim-device.ts (the MDM sends the EK hash).

describe("live swtpm + Mayfly: an EK the MDM vouched for", () => {
  let work: string;
  let sw: Swtpm;
  let tpm: TpmClient;
  let ca: TestCa;
  let client: CaClient;
  let key: Awaited<ReturnType<typeof mdmKey>>;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "mayfly-e2e-mdm-"));
    sw = await Swtpm.start({ manufacture: true });
    tpm = clientFor(sw, "e2e-mdm-activation");
    key = await mdmKey("ES256");
    const jwksFile = join(work, "jwks.json");
    writeFileSync(jwksFile, JSON.stringify(jwks(key)));
    ca = await startTestCa(`${tpmCaConfig(SHIPPED_EK_TRUST)}
mdm:
  name: testmdm
  jwksFile: ${JSON.stringify(jwksFile)}
`);
    client = caClientFor(ca);
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await ca?.close();
    await tpm?.close();
    await sw?.stop();
    rmSync(work ?? "/nonexistent", { recursive: true, force: true });
  });

  async function mdm(claims: Record<string, unknown>) {
    ca.clock.advance(1_000);
    return expectAccepted(ca, await signed(ca, key, claims));
  }

  it("refused without the MDM, accepted once it vouches (linked to its device), refused after unenrolment", async () => {
    const ek = await createEk(tpm, "rsa2048");
    const ekHash = ekPublicKeyHash(ek.public);
    await tpm.flushContext(ek.handle);
    const ekCert = (await readEkCertificate(tpm, "rsa2048"))!;

    await expectDenied(ca, "device.ek_untrusted", () => enrolDevice({ tpm, ca: client, ekKind: "rsa2048" }));

    // The MDM sends the EK certificate it inventoried; Mayfly takes the EK hash from it.
    const out = await mdm({
      type: "device.enrolled",
      mdmId: "swtpm-1",
      serial: "SWTPM-0001",
      ekCertificate: ekCert.toString("base64url"),
      compliant: true,
    });
    expect(out.created).toBe(true);
    expect((await ca.running.store.tx((tx) => tx.getDevice(out.deviceId)))?.ekPubHash?.equals(ekHash)).toBe(
      true,
    );

    const mark = await auditMark(ca);
    const enrolled = await enrolDevice({ tpm, ca: client, ekKind: "rsa2048" });
    await tpm.flushContext(enrolled.akHandle);
    await tpm.flushContext(enrolled.ekHandle);
    expect(enrolled.deviceId).toBe(out.deviceId);
    expect(await ca.running.store.tx((tx) => tx.getDevice(out.deviceId))).toMatchObject({
      kind: "managed",
      status: "active",
      managed: true,
      mdmId: "swtpm-1",
      akName: enrolled.akName,
      // Activation of the MDM's device records QN(EK -> AK) on it, as on any other.
      akQualifiedName: akQualifiedNameUnderEk(ek.public, enrolled.akName),
    });
    const events = await auditSince(ca, mark);
    expect(events.find((e) => e.type === "device.activation.start")?.data).toMatchObject({
      trustedVia: "registered",
    });
    expect(events.find((e) => e.type === "device.activation.complete")?.data).toMatchObject({
      created: false,
    });

    await mdm({ type: "device.unenrolled", mdmId: "swtpm-1" });
    await expectDenied(ca, "device.ek_untrusted", () => enrolDevice({ tpm, ca: client, ekKind: "rsa2048" }));
    expect(await leftovers(tpm)).toEqual([]);
  });

  it("the software-simulated device: the MDM's EK hash is enough, and unenrolment withdraws it", async () => {
    const ek = simEk();
    const ak = simKey("p256", AK_ATTRS);
    const ekHash = ekPublicKeyHash(ek.pub);
    const activate = async () => {
      const ch = await client.startActivation({ ekPublic: marshalTpm2bPublic(ek.pub), akPublic: ak.tpm2b });
      const secret = activateCredentialSoftware(
        ek.pub,
        ek.privateKey,
        ak.name,
        ch.credentialBlob,
        ch.encryptedSecret,
      );
      return client.completeActivation(ch.activationId, secret);
    };
    await expectDenied(ca, "device.ek_untrusted", activate);
    const out = await mdm({
      type: "device.enrolled",
      mdmId: "sim-1",
      ekPubHash: ekHash.toString("hex"),
      compliant: true,
    });
    expect((await activate()).deviceId).toBe(out.deviceId);
    const qn = akQualifiedNameUnderEk(ek.pub, ak.name);
    const storedQn = async () =>
      (await ca.running.store.tx((tx) => tx.getDevice(out.deviceId)))?.akQualifiedName?.toString("hex");
    expect(await storedQn()).toBe(qn.toString("hex"));
    await mdm({ type: "device.unenrolled", mdmId: "sim-1" });
    await expectDenied(ca, "device.ek_untrusted", activate);
    // An activation started before the unenrolment cannot complete on the unenrolled device either.
    await mdm({
      type: "device.enrolled",
      mdmId: "sim-1",
      ekPubHash: ekHash.toString("hex"),
      compliant: true,
    });
    // The MDM's events rewrite the device but keep the activated AK's QN (same EK).
    expect(await storedQn()).toBe(qn.toString("hex"));
    const ch = await client.startActivation({ ekPublic: marshalTpm2bPublic(ek.pub), akPublic: ak.tpm2b });
    await mdm({ type: "device.unenrolled", mdmId: "sim-1" });
    const secret = activateCredentialSoftware(
      ek.pub,
      ek.privateKey,
      ak.name,
      ch.credentialBlob,
      ch.encryptedSecret,
    );
    await expectDenied(ca, "device.unenrolled", () => client.completeActivation(ch.activationId, secret));
  });
});
