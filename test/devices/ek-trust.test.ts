import { createHash, createPublicKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type EkTrustOptions, ekPublicKeyHash, verifyEkTrust } from "../../src/devices/ek-trust.js";
import { EkTrustStore, loadEkTrustStore } from "../../src/devices/ek-trust-store.js";
import { type ErrorCode, isMayflyError, type MayflyError } from "../../src/errors/index.js";
import { unmarshalTpm2bPublic } from "../../src/tpm/index.js";
import {
  ekFx,
  ekPublicForCert,
  makeCa,
  makeEkCert,
  NOW,
  type TestCa,
  TRUST_DIR,
  tpmFx,
} from "./helpers/ek-fixtures.js";

async function rejects(p: Promise<unknown>, code: ErrorCode, detail?: RegExp): Promise<MayflyError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(isMayflyError(e), `expected a MayflyError, got ${String(e)}`).toBe(true);
  const err = e as MayflyError;
  expect(err.code).toBe(code);
  if (detail) expect(err.detail).toMatch(detail);
  return err;
}

let shipped: EkTrustStore;
beforeAll(async () => {
  shipped = await loadEkTrustStore(TRUST_DIR);
});

const REAL = "real/";
const STM_RSA = `${REAL}stm-st33htph-ek-rsa2048-TRAILING-431-0xFF-BYTES.der`;
const NUVOTON_75X = `${REAL}nuvoton-npct75x-ek-rsa-NONDER-set-ordering.der`;

function real(file: string): { ekCertificate: Buffer; ekPublic: Buffer } {
  const ekCertificate = ekFx(file);
  return { ekCertificate, ekPublic: ekPublicForCert(ekCertificate) };
}

describe("the shipped trust directory (ca-config/trust/tpm)", () => {
  it("loads every vendor root and intermediate", () => {
    expect(shipped.rootCount).toBe(26);
    expect(shipped.intermediateCount).toBe(147);
  });

  it.each([
    [STM_RSA, "id:53544D20", "ST33HTPHAHB4", "id:00490004", 3],
    [`${REAL}stm-st33htph-ek-ecc-p256.der`, "id:53544D20", "ST33HTPHAHB4", "id:00490004", 3],
    [`${REAL}infineon-slb9670-ek-rsa2048.der`, "id:49465800", "SLB 9670 TPM2.0", "id:0728", 3],
    [`${REAL}nuvoton-npct6xx-ek-rsa2048-ecc-signed.der`, "id:4E544300", "NPCT6xx", "id:13", 2],
    [NUVOTON_75X, "id:4E544300", "NPCT75x", "id:00070002", 2],
  ])("real EK certificate %s chains to a vendor root", async (file, manufacturer, model, version, depth) => {
    const facts = await verifyEkTrust(real(file), { store: shipped, now: NOW });
    expect(facts).toMatchObject({ trusted: true, via: "certificate", manufacturer, model, version });
    expect(facts.chainSubjects).toHaveLength(depth);
    expect(facts.chainSubjects[0]).toBe(""); // real EK certificates have an empty subject
    expect(facts.ekCertIssuer).toBe(facts.chainSubjects.length > 1 ? facts.chainSubjects[1] : undefined);
  });

  it("reports the path it found, leaf to root", async () => {
    const facts = await verifyEkTrust(real(STM_RSA), { store: shipped, now: NOW });
    expect(facts.chainSubjects.slice(1)).toEqual([
      "C=CH, O=STMicroelectronics NV, CN=STM TPM EK Intermediate CA 05",
      "C=CH, O=STMicroelectronics NV, CN=STM TPM EK Root CA",
    ]);
  });

  it("refuses an EK from a manufacturer it does not trust (the swtpm CA)", async () => {
    const input = { ekPublic: tpmFx("swtpm/ek/rsa2048.pub"), ekCertificate: ekFx("swtpm/rsa2048.cert.der") };
    await rejects(verifyEkTrust(input, { store: shipped, now: NOW }), "device.ek_untrusted", /swtpm-localca/);
  });
});

describe("EK certificate quirks", () => {
  const stm = () => ekFx(STM_RSA);
  const certLen = 1169;

  it("STMicro: strips the 431 bytes of 0xFF NV padding", async () => {
    expect(stm().length).toBe(certLen + 431);
    expect(
      stm()
        .subarray(certLen)
        .every((b) => b === 0xff),
    ).toBe(true);
    const facts = await verifyEkTrust(real(STM_RSA), { store: shipped, now: NOW });
    expect(facts.via).toBe("certificate");
  });

  it("accepts 0x00 padding and no padding as well", async () => {
    const bare = stm().subarray(0, certLen);
    const ekPublic = ekPublicForCert(bare);
    for (const ekCertificate of [bare, Buffer.concat([bare, Buffer.alloc(100)])]) {
      await expect(
        verifyEkTrust({ ekPublic, ekCertificate }, { store: shipped, now: NOW }),
      ).resolves.toMatchObject({
        via: "certificate",
      });
    }
  });

  it.each([
    ["a second DER structure", Buffer.from([0x30, 0x00])],
    ["0xFF padding with one other byte", Buffer.concat([Buffer.alloc(10, 0xff), Buffer.from([0x01])])],
    ["mixed 0xFF and 0x00 filler", Buffer.concat([Buffer.alloc(10, 0xff), Buffer.alloc(10, 0)])],
  ])("refuses other trailing bytes: %s", async (_, tail) => {
    const bare = stm().subarray(0, certLen);
    const input = { ekPublic: ekPublicForCert(bare), ekCertificate: Buffer.concat([bare, tail]) };
    const e = await rejects(
      verifyEkTrust(input, { store: shipped, now: NOW }),
      "device.ek_untrusted",
      /NV padding/,
    );
    expect(e.field).toBe("ekCertificate");
  });

  it("refuses trailing garbage even when the EK is registered (an unreadable certificate is not ignored)", async () => {
    const bare = stm().subarray(0, certLen);
    const input = {
      ekPublic: ekPublicForCert(bare),
      ekCertificate: Buffer.concat([bare, Buffer.from("junk")]),
    };
    await rejects(
      verifyEkTrust(input, { store: shipped, now: NOW, isRegistered: () => true }),
      "device.ek_untrusted",
      /NV padding/,
    );
  });

  it("Nuvoton: accepts the non-DER SET ordering, verifying the signature over the bytes as sent", async () => {
    const facts = await verifyEkTrust(real(NUVOTON_75X), { store: shipped, now: NOW });
    expect(facts.chainSubjects[1]).toBe("CN=Nuvoton TPM Root CA 2111+O=Nuvoton Technology Corporation+C=TW");
  });

  it("Nuvoton: the same certificate re-encoded in DER SET order no longer verifies", async () => {
    // The issuer RDN is SET { CN, O, C }; DER sorts members by encoding: C (9), CN (31), O (37).
    const der = Buffer.from(ekFx(NUVOTON_75X));
    const cn = Buffer.from("301f0603550403131" + "84e75766f746f6e2054504d20526f6f742043412032313131", "hex");
    const at = der.indexOf(cn);
    expect(at).toBeGreaterThan(0);
    const o = der.subarray(at + cn.length, at + cn.length + 0x27);
    const c = der.subarray(at + cn.length + 0x27, at + cn.length + 0x27 + 0x0b);
    expect(o.subarray(0, 7).toString("hex")).toBe("3025060355040a");
    expect(c.subarray(0, 7).toString("hex")).toBe("30090603550406");
    const sorted = Buffer.concat([der.subarray(0, at), c, cn, o, der.subarray(at + cn.length + 0x27 + 0x0b)]);
    expect(sorted.length).toBe(der.length);
    const input = { ekPublic: ekPublicForCert(der), ekCertificate: sorted };
    await rejects(
      verifyEkTrust(input, { store: shipped, now: NOW }),
      "device.ek_untrusted",
      /does not verify/,
    );
  });

  it("Nuvoton: a non-DER root certificate loads as a trust anchor", () => {
    const store = EkTrustStore.fromCertificates({
      roots: [ekFx(`${REAL}nuvoton-tpm-root-ca-2110-ecc-NONDER-set-ordering.der`)],
    });
    expect(store.rootCount).toBe(1);
  });

  it("swtpm: RSA, P-384 and P-256 EKs (the ECC ones certified by an RSA-3072 CA), notAfter 9999", async () => {
    const store = EkTrustStore.fromCertificates({
      roots: [ekFx("swtpm/ca-root.pem")],
      intermediates: [ekFx("swtpm/ca-intermediate.pem")],
    });
    for (const t of ["rsa2048", "ecc384", "ecc256"]) {
      const input = { ekPublic: tpmFx(`swtpm/ek/${t}.pub`), ekCertificate: ekFx(`swtpm/${t}.cert.der`) };
      // Year 9000: the leaf's 99991231235959Z GeneralizedTime is still in the future.
      for (const now of [NOW, Date.UTC(9000, 0, 1)]) {
        const facts = await verifyEkTrust(input, { store, now });
        expect(facts).toMatchObject({
          via: "certificate",
          manufacturer: "id:00001014",
          model: "swtpm",
          version: "id:20191023",
          ekCertIssuer: "CN=swtpm-localca",
          chainSubjects: ["CN=unknown", "CN=swtpm-localca", "CN=swtpm-localca-rootca"],
        });
      }
    }
  });

  it("refuses an outer signatureAlgorithm that differs from the signed one (parameters included)", async () => {
    const der = Buffer.from(ekFx("swtpm/rsa2048.cert.der"));
    const alg = Buffer.from("300d06092a864886f70d01010b0500", "hex"); // sha256WithRSAEncryption, NULL
    const outer = der.lastIndexOf(alg);
    expect(outer).toBeGreaterThan(der.indexOf(alg));
    der[outer + alg.length - 2] = 0x04; // NULL -> empty OCTET STRING: unsigned, so only this check sees it
    const store = EkTrustStore.fromCertificates({
      roots: [ekFx("swtpm/ca-root.pem")],
      intermediates: [ekFx("swtpm/ca-intermediate.pem")],
    });
    const input = { ekPublic: tpmFx("swtpm/ek/rsa2048.pub"), ekCertificate: der };
    await rejects(verifyEkTrust(input, { store, now: NOW }), "device.ek_untrusted", /differs/);
  });

  it("refuses a non-DER unsigned envelope: unused bits in signatureValue, a long-form short length", async () => {
    const der = ekFx(`${REAL}stm-st33htph-ek-ecc-p256.der`);
    const ekPublic = ekPublicForCert(der);
    const unused = Buffer.from(der);
    expect(unused.subarray(701, 704).toString("hex")).toBe("034800"); // BIT STRING, 72 bytes, 0 unused bits
    unused[703] = 1;
    await rejects(
      verifyEkTrust({ ekPublic, ekCertificate: unused }, { store: shipped, now: NOW }),
      "device.ek_untrusted",
      /unused bits/,
    );
    // 03 48 -> 03 81 48: the same BIT STRING with a non-minimal length, outer length + 1.
    const outerLen = der.readUInt16BE(2);
    const longForm = Buffer.concat([der.subarray(0, 702), Buffer.from([0x81]), der.subarray(702)]);
    longForm.writeUInt16BE(outerLen + 1, 2);
    await rejects(
      verifyEkTrust({ ekPublic, ekCertificate: longForm }, { store: shipped, now: NOW }),
      "device.ek_untrusted",
      /not DER/,
    );
  });

  it("swtpm: the empty-subject EK certificate (swtpm_cert)", async () => {
    const store = EkTrustStore.fromCertificates({
      roots: [ekFx("swtpm/ca-root.pem")],
      intermediates: [ekFx("swtpm/ca-intermediate.pem")],
    });
    const input = {
      ekPublic: tpmFx("swtpm/ek/rsa2048.pub"),
      ekCertificate: ekFx("swtpm/rsa2048.cert.empty-subject.der"),
    };
    const facts = await verifyEkTrust(input, { store, now: NOW });
    expect(facts.chainSubjects[0]).toBe("");
    expect(facts.model).toBe("swtpm");
  });
});

describe("trust decisions", () => {
  const swtpmRootOnly = () => EkTrustStore.fromCertificates({ roots: [ekFx("swtpm/ca-root.pem")] });
  const rsaInput = () => ({
    ekPublic: tpmFx("swtpm/ek/rsa2048.pub"),
    ekCertificate: ekFx("swtpm/rsa2048.cert.der"),
  });

  it("uses untrusted ekChain intermediates to reach a root, and fails without them", async () => {
    const store = swtpmRootOnly();
    const ekChain = [pemToDer(ekFx("swtpm/ca-intermediate.pem"))];
    await expect(verifyEkTrust({ ...rsaInput(), ekChain }, { store, now: NOW })).resolves.toMatchObject({
      via: "certificate",
    });
    await rejects(verifyEkTrust(rsaInput(), { store, now: NOW }), "device.ek_untrusted", /swtpm-localca/);
  });

  it("does not let an ekChain certificate act as a root", async () => {
    const ekChain = [pemToDer(ekFx("swtpm/ca-intermediate.pem")), pemToDer(ekFx("swtpm/ca-root.pem"))];
    await rejects(
      verifyEkTrust({ ...rsaInput(), ekChain }, { store: shipped, now: NOW }),
      "device.ek_untrusted",
    );
  });

  it("refuses a certificate whose key is not the presented EK public area, even for a registered EK", async () => {
    const input = { ekPublic: tpmFx("swtpm/ek/ecc256.pub"), ekCertificate: ekFx("swtpm/rsa2048.cert.der") };
    const store = swtpmRootOnly();
    const e = await rejects(verifyEkTrust(input, { store, now: NOW }), "device.ek_mismatch");
    expect(e.field).toBe("ekCertificate");
    await rejects(verifyEkTrust(input, { store, now: NOW, isRegistered: () => true }), "device.ek_mismatch");
    // A genuine vendor certificate presented with someone else's EK.
    const stolen = { ekPublic: tpmFx("swtpm/ek/rsa2048.pub"), ekCertificate: ekFx(STM_RSA) };
    await rejects(verifyEkTrust(stolen, { store: shipped, now: NOW }), "device.ek_mismatch");
  });

  it("accepts a registered EK by SHA-256 of its SPKI DER (the tpm2_readpublic -f pem key)", async () => {
    const ekPublic = tpmFx("swtpm/ek/ecc384.pub");
    const pemDer = createPublicKey(tpmFx("swtpm/ek/ecc384.pub.pem")).export({ type: "spki", format: "der" });
    const hash = createHash("sha256").update(pemDer).digest();
    expect(ekPublicKeyHash(unmarshalTpm2bPublic(ekPublic)).equals(hash)).toBe(true);
    const asked: Buffer[] = [];
    const isRegistered = async (h: Buffer) => {
      asked.push(h);
      return h.equals(hash);
    };
    const facts = await verifyEkTrust({ ekPublic }, { store: EkTrustStore.empty(), now: NOW, isRegistered });
    expect(facts).toMatchObject({ trusted: true, via: "registered", chainSubjects: [] });
    expect(facts.ekPubHash.equals(hash)).toBe(true);
    expect(asked).toHaveLength(1);
    const other = { ekPublic: tpmFx("swtpm/ek/rsa2048.pub") };
    await rejects(
      verifyEkTrust(other, { store: shipped, now: NOW, isRegistered }),
      "device.ek_untrusted",
      /not registered/,
    );
  });

  it("falls back to the registration when the certificate path fails", async () => {
    const hash = ekPublicKeyHash(unmarshalTpm2bPublic(tpmFx("swtpm/ek/rsa2048.pub")));
    const facts = await verifyEkTrust(rsaInput(), {
      store: shipped,
      now: NOW,
      isRegistered: (h) => h.equals(hash),
    });
    expect(facts.via).toBe("registered");
    expect(facts.manufacturer).toBeUndefined(); // facts from an untrusted certificate are not reported
  });

  it("fails closed with an empty trust directory and no registration", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mayfly-ek-trust-"));
    try {
      const empty = await loadEkTrustStore(dir);
      expect(empty.rootCount).toBe(0);
      await rejects(
        verifyEkTrust(rsaInput(), { store: empty, now: NOW }),
        "device.ek_untrusted",
        /no TPM manufacturer root/,
      );
      await rejects(
        verifyEkTrust({ ekPublic: tpmFx("swtpm/ek/rsa2048.pub") }, { store: empty, now: NOW }),
        "device.ek_untrusted",
        /no EK certificate/,
      );
      const registered = await verifyEkTrust(rsaInput(), {
        store: empty,
        now: NOW,
        isRegistered: () => true,
      });
      expect(registered.via).toBe("registered");
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("checks the EK certificate's validity at the injected time", async () => {
    const store = EkTrustStore.fromCertificates({
      roots: [ekFx("swtpm/ca-root.pem")],
      intermediates: [ekFx("swtpm/ca-intermediate.pem")],
    });
    const before = Date.UTC(2026, 0, 1); // the swtpm certificates start 2026-11-28
    await rejects(verifyEkTrust(rsaInput(), { store, now: before }), "device.ek_untrusted", /not valid at/);
    const opts: EkTrustOptions = { store, now: before, ignoreLeafValidity: true };
    await expect(verifyEkTrust(rsaInput(), opts)).resolves.toMatchObject({ via: "certificate" });
  });

  it("refuses a public area that is not an EK (an AK)", async () => {
    await rejects(
      verifyEkTrust(
        { ekPublic: tpmFx("swtpm/ak/rsa2048.pub") },
        { store: shipped, now: NOW, isRegistered: () => true },
      ),
      "device.ek_untrusted",
      /is not an EK/,
    );
  });

  it("bounds ekChain", async () => {
    const ekChain = Array.from({ length: 9 }, () => pemToDer(ekFx("swtpm/ca-intermediate.pem")));
    await rejects(
      verifyEkTrust({ ...rsaInput(), ekChain }, { store: swtpmRootOnly(), now: NOW }),
      "device.ek_untrusted",
      /more than 8/,
    );
  });
});

describe("path rules (synthetic vendor PKI)", () => {
  let root: TestCa;
  let store: EkTrustStore;
  beforeAll(async () => {
    root = await makeCa("Test TPM Root", null);
    store = EkTrustStore.fromCertificates({ roots: [root.der] });
  });

  async function viaIntermediate(ca: TestCa, leafOpts = {}) {
    const ek = await makeEkCert(ca, leafOpts);
    return verifyEkTrust(
      { ekPublic: ek.ekPublic, ekCertificate: ek.der, ekChain: [ca.der] },
      { store, now: NOW },
    );
  }

  it("accepts a good path and parses the TCG SAN", async () => {
    const ica = await makeCa("Test TPM ICA", root);
    const facts = await viaIntermediate(ica);
    expect(facts).toMatchObject({
      via: "certificate",
      manufacturer: "id:4D594659",
      model: "TestTPM",
      version: "id:00010002",
    });
  });

  it("does not check CA expiry: an intermediate that expired in 2025 still vouches for its EKs", async () => {
    const ica = await makeCa("Expired ICA", root, {
      notBefore: Date.UTC(2015, 0, 1),
      notAfter: Date.UTC(2025, 0, 1),
    });
    await expect(viaIntermediate(ica)).resolves.toMatchObject({ via: "certificate" });
  });

  it("checks the EK certificate's own expiry", async () => {
    const ica = await makeCa("Test TPM ICA 2", root);
    await rejects(
      viaIntermediate(ica, { notAfter: Date.UTC(2026, 0, 1) }),
      "device.ek_untrusted",
      /not valid at/,
    );
  });

  it("refuses a SHA-1 signature on the path", async () => {
    const ica = await makeCa("SHA-1 ICA", root, { hash: "SHA-1" });
    await rejects(viaIntermediate(ica), "device.ek_untrusted", /SHA-1/);
    const ica2 = await makeCa("Test TPM ICA 3", root);
    await rejects(viaIntermediate(ica2, { hash: "SHA-1" }), "device.ek_untrusted", /SHA-1/);
  });

  it("refuses an issuer that is not a CA, and a broken path length", async () => {
    const notCa = await makeCa("Not a CA", root, { ca: false });
    await rejects(viaIntermediate(notCa), "device.ek_untrusted", /is not a CA/);
    const root0 = await makeCa("Root pathlen 0", null, { pathLen: 0 });
    const ica = await makeCa("Under pathlen 0", root0);
    const ek = await makeEkCert(ica);
    const s = EkTrustStore.fromCertificates({ roots: [root0.der] });
    await rejects(
      verifyEkTrust(
        { ekPublic: ek.ekPublic, ekCertificate: ek.der, ekChain: [ica.der] },
        { store: s, now: NOW },
      ),
      "device.ek_untrusted",
      /path length/,
    );
  });

  it("refuses unknown critical extensions, an EKU without the EK purpose, and a CA certificate as the EK", async () => {
    const odd = await makeCa("Odd ICA", root, { extraCritical: true });
    await rejects(viaIntermediate(odd), "device.ek_untrusted", /critical extension/);
    const ica = await makeCa("Test TPM ICA 4", root);
    await rejects(viaIntermediate(ica, { extraCritical: true }), "device.ek_untrusted", /critical extension/);
    await rejects(viaIntermediate(ica, { eku: ["2.23.133.8.3"] }), "device.ek_untrusted", /2\.23\.133\.8\.1/);
    const asEk = { ekPublic: ekPublicForCert(ica.der), ekCertificate: ica.der };
    await rejects(verifyEkTrust(asEk, { store, now: NOW }), "device.ek_untrusted", /is a CA certificate/);
  });

  it("refuses a certificate signed by a different key under the same CA name", async () => {
    const impostor = await makeCa("Test TPM Root", null); // same subject as the root, other key
    const ek = await makeEkCert(impostor);
    await rejects(
      verifyEkTrust({ ekPublic: ek.ekPublic, ekCertificate: ek.der }, { store, now: NOW }),
      "device.ek_untrusted",
      /does not verify/,
    );
  });
});

function pemToDer(pem: Buffer): Buffer {
  const b64 = pem
    .toString("latin1")
    .replace(/-----[A-Z ]+-----/g, "")
    .replace(/\s+/g, "");
  return Buffer.from(b64, "base64");
}
