import { describe, expect, it } from "vitest";
import { EvidenceRegistry } from "../../src/evidence/registry.js";
import { tpmFormats } from "../../src/evidence/tpm-formats.js";
import {
  AK_ATTRS,
  binding,
  certifyAttestation,
  context,
  device,
  KEY_ATTRS,
  simKey,
} from "./helpers/tpm-sim.js";

describe("tpmFormats", () => {
  it("registers tpm-certify and tpm-quote, which verify through the registry", async () => {
    const registry = new EvidenceRegistry(tpmFormats());
    expect(registry.names()).toEqual(["tpm-certify", "tpm-quote"]);
    const ak = simKey("p256", AK_ATTRS);
    const key = simKey("p256", KEY_ATTRS);
    const att = certifyAttestation(ak, key, binding(key.spki));
    const facts = await registry.get(att.format).verify(att, context(device(ak), key));
    expect(facts.keyResidency).toBe("tpm");
  });

  it("passes the options to both formats", async () => {
    const ak = simKey("p256", AK_ATTRS);
    const key = simKey("p256", KEY_ATTRS);
    const seen: string[] = [];
    const [certify] = tpmFormats({
      qualifiedSigner: (d) => {
        seen.push(d.id);
        return null;
      },
    });
    await certify!.verify(certifyAttestation(ak, key, binding(key.spki)), context(device(ak, "dev-9"), key));
    expect(seen).toEqual(["dev-9"]);
  });
});
