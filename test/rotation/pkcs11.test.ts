import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rootActivate, rootPrepare } from "../../src/authority/rotation-root.js";
import { issueVia } from "../helpers/test-ca.js";
import { SOFTHSM_MODULE, SoftHsm } from "../keys/softhsm.js";
import { opensslVerify, type RotationCa, startRotationCa } from "./helpers.js";

// Rotation with every CA key in a PKCS#11 token (SoftHSM2): new keys are generated in the
// token, the cross certificates and intermediates are signed by it, and so is the bundle's
// JWS (CKM_ECDSA's signature turned into the JWS form), which verifyBundleUpdate accepts.

const HOUR = 3_600_000;
let hsm: SoftHsm;
let ca: RotationCa;
beforeAll(async () => {
  hsm = await SoftHsm.create();
  const token = await hsm.initToken("mayfly-rotation");
  const pin = join(hsm.dir, "pin");
  await writeFile(pin, `${token.pin}\n`, { mode: 0o600 });
  ca = await startRotationCa(
    `
keys:
  kind: pkcs11
  pkcs11:
    module: ${SOFTHSM_MODULE}
    tokenLabel: ${token.label}
    pin: { file: ${pin} }
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
rotation:
  auto: false
  propagation: 1h
  intermediateActiveFor: 6h
`,
    Date.now() - 3 * 24 * HOUR,
  );
});
afterAll(async () => {
  await ca?.close();
  await hsm?.cleanup();
});

describe("rotation with CA keys in a PKCS#11 token", () => {
  it("rotates the root and the intermediate with keys generated and signing in the token", async () => {
    const deps = ca.deps();
    expect(ca.running.keys.kind).toBe("pkcs11");
    const p = await rootPrepare(deps);
    expect(p.canaried).toBe(true);
    await ca.running.rotation.refresh();
    const b1 = (await ca.updateTrust()).json;
    expect(b1.signatures).toHaveLength(2);
    expect(JSON.parse(Buffer.from(b1.signatures[1]!.protected, "base64url").toString()).alg).toBe("ES256");

    ca.clock.advance(HOUR);
    await rootActivate(deps);
    ca.clock.advance(6 * HOUR);
    const t = await ca.running.rotation.tick();
    expect(t.done.map((d) => d.step)).toEqual(["retire", "prepare", "canary"]); // the old root's intermediate has drained
    ca.clock.advance(HOUR);
    expect((await ca.running.rotation.tick()).done.map((d) => d.step)).toContain("activate");
    const b2 = (await ca.updateTrust()).json;
    expect(b2.roots.map((r) => r.slot)).toEqual(["previous", "current"]);

    const agent = await ca.seedAgent();
    const { res } = await issueVia(ca, agent);
    expect(res.status).toBe(201);
    const out = res.json as { certificate: string; chain: string[] };
    expect(out.chain[0]).toBe(b2.intermediates.find((i) => i.slot === "current")!.pem);
    const v = await opensslVerify(ca.dir, b2, out.certificate, ca.clock.now());
    expect(`${v.stdout}${v.stderr}`).toContain("OK");
    const labels = await ca.running.keys.list();
    expect(labels.filter((l) => l.startsWith("root-"))).toHaveLength(2);
    expect(labels.filter((l) => l.startsWith("intermediate-"))).toHaveLength(3);
  });
});
