import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EK_CERT_NV_INDEX } from "../../../src/tpm/client/index.js";
import { TPM_ALG, unmarshalTpm2bPublic } from "../../../src/tpm/index.js";
import type { Swtpm } from "./swtpm.js";

// Manufacturing a test TPM as ../shared/tpm/README.md §4 does: a private "manufacturer" CA
// (swtpm_localca, never the system one under /var/lib), EK certificates in NV written by
// swtpm_setup, all inside the TPM's own temp dir.

const TPM_IDS = [
  "--tpm-spec-family",
  "2.0",
  "--tpm-spec-level",
  "0",
  "--tpm-spec-revision",
  "164",
  "--tpm-manufacturer",
  "id:00001014",
  "--tpm-model",
  "swtpm",
  "--tpm-version",
  "id:20191023",
];

function writeConfigs(dir: string): void {
  const ca = join(dir, "localca");
  mkdirSync(ca, { recursive: true });
  writeFileSync(
    join(dir, "swtpm-localca.conf"),
    `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`,
  );
  writeFileSync(
    join(dir, "swtpm-localca.options"),
    "--platform-manufacturer TestCo\n--platform-version 2.1\n--platform-model swtpm-test\n",
  );
  writeFileSync(
    join(dir, "swtpm_setup.conf"),
    `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${dir}/swtpm-localca.conf\n` +
      `create_certs_tool_options = ${dir}/swtpm-localca.options\nactive_pcr_banks = sha256\n`,
  );
}

/** swtpm_setup on `dir`/state (before swtpm starts on it: G15). About 0.9 s with a fresh CA. */
export function manufacture(dir: string): void {
  writeConfigs(dir);
  execFileSync(
    "swtpm_setup",
    [
      "--tpm2",
      "--tpmstate",
      join(dir, "state"),
      "--config",
      join(dir, "swtpm_setup.conf"),
      "--create-ek-cert",
      "--pcr-banks",
      "sha256",
      "--overwrite",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
}

/**
 * swtpm 0.7.1 writes no P-256 EK certificate (README §10). Issue one with the same CA for the
 * EK that tpm2_createek (L-2) makes, and store it at 0x01c0000a as an owner index. The key
 * comes from tpm2-tools, so a test comparing it with our CreatePrimary checks our template.
 */
export function writeP256EkCert(tpm: Swtpm): Buffer {
  tpm.run("tpm2_createek", ["-G", "ecc", "-c", "p256.ek.ctx", "-u", "p256.ek.pub", "-f", "tss"]);
  tpm.flush();
  const ek = unmarshalTpm2bPublic(readFileSync(join(tpm.dir, "p256.ek.pub")));
  if (ek.type !== TPM_ALG.ECC) throw new Error("tpm2_createek -G ecc did not make an ECC key");
  const out = join(tpm.dir, "p256-cert");
  mkdirSync(out, { recursive: true });
  const point = `x=${ek.unique.x.toString("hex")},y=${ek.unique.y.toString("hex")},id=secp256r1`;
  tpm.run("swtpm_localca", [
    "--type",
    "ek",
    "--ek",
    point,
    "--dir",
    out,
    "--tpm2",
    "--configfile",
    join(tpm.dir, "swtpm-localca.conf"),
    "--optsfile",
    join(tpm.dir, "swtpm-localca.options"),
    ...TPM_IDS,
  ]);
  const cert = join(out, "ek.cert");
  const index = `0x${EK_CERT_NV_INDEX.ecc256.toString(16)}`;
  tpm.run("tpm2_nvdefine", [
    index,
    "-C",
    "o",
    "-s",
    String(statSync(cert).size),
    "-a",
    "ownerread|ownerwrite|authread|no_da",
  ]);
  tpm.run("tpm2_nvwrite", [index, "-C", "o", "-i", cert]);
  return readFileSync(cert);
}
