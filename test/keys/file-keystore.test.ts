import { execFile } from "node:child_process";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect, promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileKeyStore } from "../../src/keys/file-keystore.js";
import type { KeyStore } from "../../src/keys/keystore.js";
import { PBKDF2_ITERATIONS } from "../../src/keys/pbes2.js";
import { expectCode, runKeyStoreConformance, verifies } from "./conformance.js";

const PASS = "correct horse battery staple";
const run = promisify(execFile);
let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "mayfly-keys-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const freshDir = () => join(root, `store-${++n}`, "keys");
const open = (dir: string, passphrase = PASS) => FileKeyStore.open({ dir, passphrase });

runKeyStoreConformance("file", () => open(freshDir()), {
  reopen: async (ks: KeyStore) => {
    await ks.close();
    return open((ks as FileKeyStore).dir);
  },
});

async function openssl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run("openssl", args, { encoding: "utf8" });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === "number" ? err.code : 1,
      stdout: err.stdout ?? "",
      stderr: err.stderr ?? "",
    };
  }
}

describe("FileKeyStore on disk", () => {
  let passFile: string;
  beforeAll(async () => {
    passFile = join(root, "pass.txt");
    await writeFile(passFile, `${PASS}\n`, { mode: 0o600 });
  });

  it("creates the directory 0700 and key files 0600, leaving no temp files", async () => {
    const dir = freshDir();
    const ks = await open(dir);
    await ks.generate("root", { kind: "ec", curve: "P-256" });
    await expectCode(ks.generate("root", { kind: "ec", curve: "P-256" }), "key.exists");
    await ks.generate("inter", { kind: "rsa", bits: 2048 });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await readdir(dir)).sort()).toEqual([
      "inter.key.pem",
      "inter.pub.pem",
      "root.key.pem",
      "root.pub.pem",
    ]);
    for (const f of await readdir(dir)) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
  });

  it("refuses a directory others can write to", async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o770);
    await expectCode(open(dir), "config.invalid");
  });

  it("refuses a short passphrase", async () => {
    const err = await expectCode(open(freshDir(), "elevenchars"), "key.passphrase_weak");
    expect(err.message).not.toContain("elevenchars");
  });

  it.each([
    { kind: "ec", curve: "P-384" },
    { kind: "rsa", bits: 2048 },
  ] as const)("writes PBES2 that openssl opens with the passphrase and only with it (%j)", async (spec) => {
    const dir = freshDir();
    const ks = await open(dir);
    const s = await ks.generate("root", spec);
    const key = join(dir, "root.key.pem");
    const pem = await readFile(key, "utf8");
    expect(pem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);

    const ok = await openssl(["pkey", "-in", key, "-passin", `file:${passFile}`, "-pubout"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(await readFile(join(dir, "root.pub.pem"), "utf8"));
    // Node (OpenSSL underneath) is a second independent reader of the same file.
    expect(createPrivateKey({ key: pem, passphrase: PASS }).type).toBe("private");
    for (const passin of ["pass:", "pass:correct horse battery stapl", `pass:${PASS}x`]) {
      expect((await openssl(["pkey", "-in", key, "-passin", passin, "-pubout"])).code).not.toBe(0);
    }

    const asn1 = (await openssl(["asn1parse", "-in", key])).stdout;
    expect(asn1).toMatch(/OBJECT\s+:PBES2/);
    expect(asn1).toMatch(/OBJECT\s+:PBKDF2/);
    expect(asn1).toMatch(/OBJECT\s+:hmacWithSHA256/);
    expect(asn1).toMatch(/OBJECT\s+:aes-256-cbc/);
    expect(asn1).toContain(
      `INTEGER           :${PBKDF2_ITERATIONS.toString(16).toUpperCase().padStart(6, "0")}`,
    );
    expect(asn1).toMatch(/l=\s*16 prim: OCTET STRING/); // 16-byte salt and IV
    expect(s.spec).toEqual(spec);
  });

  it("loads a key that openssl encrypted with strong parameters", async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const plain = join(root, `plain-${++n}.pem`);
    expect(
      (await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", plain]))
        .code,
    ).toBe(0);
    const args = [
      "pkcs8",
      "-topk8",
      "-in",
      plain,
      "-v2",
      "aes-256-cbc",
      "-iter",
      "600000",
      "-passout",
      `file:${passFile}`,
    ];
    expect((await openssl([...args, "-out", join(dir, "imported.key.pem")])).code).toBe(0);
    const s = await (await open(dir)).load("imported");
    expect(s.spec).toEqual({ kind: "ec", curve: "P-384" });
    const data = Buffer.from("imported");
    expect(verifies(s, data, await s.sign(data, "sha384"), "sha384")).toBe(true);
  });

  it("answers key.decrypt_failed for a wrong passphrase, without echoing either", async () => {
    const dir = freshDir();
    await (await open(dir)).generate("root", { kind: "ec", curve: "P-256" });
    const err = await expectCode(
      (await open(dir, "the wrong passphrase")).load("root"),
      "key.decrypt_failed",
    );
    expect(`${err.message} ${inspect(err)}`).not.toMatch(/the wrong passphrase|correct horse/);
  });

  it("refuses plaintext keys with key.not_encrypted", async () => {
    const dir = freshDir();
    const ks = await open(dir);
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const files = {
      pkcs8: ec.export({ type: "pkcs8", format: "pem" }),
      sec1: ec.export({ type: "sec1", format: "pem" }),
      pkcs1: rsa.export({ type: "pkcs1", format: "pem" }),
    };
    for (const [label, pem] of Object.entries(files)) {
      await writeFile(join(dir, `${label}.key.pem`), pem, { mode: 0o600 });
      await expectCode(ks.load(label), "key.not_encrypted");
    }
  });

  it("refuses weakly or oddly protected keys with key.decrypt_failed", async () => {
    const dir = freshDir();
    const ks = await open(dir);
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const plain = join(root, `plain-${++n}.pem`);
    await writeFile(plain, ec.export({ type: "pkcs8", format: "pem" }));
    const viaOpenssl = async (label: string, extra: string[]) => {
      const out = join(dir, `${label}.key.pem`);
      const r = await openssl([
        "pkcs8",
        "-topk8",
        "-in",
        plain,
        "-passout",
        `file:${passFile}`,
        "-out",
        out,
        ...extra,
      ]);
      expect(r.code).toBe(0);
    };
    // Node's own export: PBKDF2 with 2,048 iterations.
    const nodeDefault = ec.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: PASS });
    await writeFile(join(dir, "node-default.key.pem"), nodeDefault, { mode: 0o600 });
    expect((await expectCode(ks.load("node-default"), "key.decrypt_failed")).message).toMatch(
      /iteration count 2048/,
    );
    await viaOpenssl("sha1-prf", ["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1", "-iter", "600000"]);
    await viaOpenssl("aes128", ["-v2", "aes-128-cbc", "-iter", "600000"]);
    await viaOpenssl("scrypt", ["-v2", "aes-256-cbc", "-scrypt"]);
    await viaOpenssl("legacy", ["-v1", "PBE-SHA1-3DES"]);
    for (const label of ["sha1-prf", "aes128", "scrypt", "legacy"])
      await expectCode(ks.load(label), "key.decrypt_failed");
    // OpenSSL's traditional "Proc-Type: 4,ENCRYPTED" PEM (MD5-based key derivation).
    const trad = await openssl(["ec", "-in", plain, "-aes256", "-passout", `file:${passFile}`]);
    await writeFile(join(dir, "traditional.key.pem"), trad.stdout, { mode: 0o600 });
    expect(trad.stdout).toContain("Proc-Type: 4,ENCRYPTED");
    await expectCode(ks.load("traditional"), "key.decrypt_failed");
  });

  it("refuses damaged files and a public key file that disagrees", async () => {
    const dir = freshDir();
    const ks = await open(dir);
    await ks.generate("good", { kind: "ec", curve: "P-256" });
    await ks.generate("other", { kind: "ec", curve: "P-256" });
    const pem = await readFile(join(dir, "good.key.pem"), "utf8");
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\n/g, ""), "base64");
    const asPem = (b: Buffer) =>
      `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${b.toString("base64")}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
    const flipped = Buffer.from(der);
    flipped[flipped.length - 20]! ^= 0x01;
    const damaged = {
      empty: "",
      garbage: "not a key at all",
      truncated: asPem(der.subarray(0, der.length - 16)),
      trailing: asPem(Buffer.concat([der, Buffer.from([0])])),
      flipped: asPem(flipped),
      twoblocks: pem + pem,
    };
    const reader = await open(dir);
    for (const [label, text] of Object.entries(damaged)) {
      await writeFile(join(dir, `${label}.key.pem`), text, { mode: 0o600 });
      await expectCode(reader.load(label), "key.decrypt_failed");
    }
    await writeFile(join(dir, "good.pub.pem"), await readFile(join(dir, "other.pub.pem")));
    const err = await expectCode(reader.load("good"), "key.decrypt_failed");
    expect(err.message).toContain("does not match");
    await rm(join(dir, "good.pub.pem"));
    expect((await reader.load("good")).label).toBe("good");
  });

  it("signs from memory once loaded: no file reads on the hot path", async () => {
    const dir = freshDir();
    await (await open(dir)).generate("root", { kind: "ec", curve: "P-256" });
    const ks = await open(dir);
    const [a, b] = await Promise.all([ks.load("root"), ks.load("root")]);
    expect(a).toBe(b);
    await rm(dir, { recursive: true });
    const data = Buffer.from("hot path");
    const sigs = await Promise.all(Array.from({ length: 200 }, () => a.sign(data, "sha256")));
    for (const sig of sigs.slice(0, 3)) expect(verifies(a, data, sig, "sha256")).toBe(true);
    expect(await ks.load("root")).toBe(a);
  });

  it("lists only key files with valid labels", async () => {
    const dir = freshDir();
    const ks = await open(dir);
    await ks.generate("root", { kind: "ec", curve: "P-256" });
    for (const f of ["passphrase", ".tmp-abc", "orphan.pub.pem", ".hidden.key.pem", "notes.txt"]) {
      await writeFile(join(dir, f), "x");
    }
    expect(await ks.list()).toEqual(["root"]);
  });

  it("keeps the private key and passphrase out of signer and store renderings", async () => {
    const dir = freshDir();
    const ks = await open(dir);
    const s = await ks.generate("root", { kind: "ec", curve: "P-256" });
    const decrypted = await openssl([
      "pkey",
      "-in",
      join(dir, "root.key.pem"),
      "-passin",
      `file:${passFile}`,
    ]);
    const jwk = createPrivateKey(decrypted.stdout).export({ format: "jwk" });
    const d = Buffer.from(jwk.d!, "base64url");
    const secrets = [jwk.d!, d.toString("hex"), d.toString("base64"), PASS];
    const renderings = [
      JSON.stringify(s),
      inspect(s, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
      JSON.stringify(ks),
      inspect(ks, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
    ];
    for (const r of renderings) for (const secret of secrets) expect(r).not.toContain(secret);
  });

  it("is unusable after close", async () => {
    const ks = await open(freshDir());
    await ks.close();
    await expectCode(() => ks.list(), "internal.error");
  });
});
