import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { appendAudit } from "../../audit/index.js";
import { ekPublicKeyHash } from "../../devices/ek-trust.js";
import { MayflyError } from "../../errors/index.js";
import { systemClock } from "../../runtime/clock.js";
import { unmarshalTpm2bPublic } from "../../tpm/index.js";
import { EXIT } from "../exit-codes.js";
import { openConfiguredStore, resolveConfig } from "../open.js";
import { printJson } from "../output.js";

/** The EK hash from --ek-hash (64 hex digits) or --ek-public (a TPM2B_PUBLIC file, as tpm2_createek -f tss writes it). */
async function ekHashFrom(opts: { ekHash?: string; ekPublic?: string }): Promise<Buffer> {
  if (Boolean(opts.ekHash) === Boolean(opts.ekPublic)) {
    throw new MayflyError("request.invalid", "give exactly one of --ek-hash and --ek-public");
  }
  if (opts.ekHash) {
    if (!/^[0-9a-fA-F]{64}$/.test(opts.ekHash)) {
      throw new MayflyError(
        "request.invalid",
        "--ek-hash must be 64 hex digits (SHA-256 of the EK SubjectPublicKeyInfo DER)",
      );
    }
    return Buffer.from(opts.ekHash, "hex");
  }
  return ekPublicKeyHash(unmarshalTpm2bPublic(await readFile(opts.ekPublic!)));
}

export function registerDevice(program: Command): void {
  const device = program.command("device").description("devices and their endorsement keys");
  device
    .command("register")
    .description(
      "vouch for a TPM by its EK (SHA-256 of its SubjectPublicKeyInfo DER) so it can activate without an EK certificate",
    )
    .option("--ek-hash <hex>", "SHA-256 of the EK SubjectPublicKeyInfo DER, 64 hex digits")
    .option("--ek-public <file>", "the EK public area (TPM2B_PUBLIC, as `tpm2_createek -f tss` writes it)")
    .option("--note <text>", "why, for the audit log")
    .option("-c, --config <file>", "configuration file (default: $MAYFLY_CONFIG or embedded defaults)")
    .option("--json", "print the result as JSON")
    .action(
      async (opts: {
        ekHash?: string;
        ekPublic?: string;
        note?: string;
        config?: string;
        json?: boolean;
      }) => {
        const ekPubHash = await ekHashFrom(opts);
        const rc = await resolveConfig(opts.config);
        const store = await openConfiguredStore(rc);
        try {
          const now = systemClock.now();
          await store.tx(async (tx) => {
            await tx.upsertEkRegistration({
              ekPubHash,
              source: "cli",
              note: opts.note ?? null,
              createdAt: now,
            });
            await appendAudit(tx, systemClock, {
              type: "device.ek.register",
              decision: "allow",
              code: null,
              actor: "cli",
              subject: `ek:${ekPubHash.toString("hex")}`,
              data: { note: opts.note ?? null },
            });
          });
          const out = { ok: true, ekHash: ekPubHash.toString("hex") };
          if (opts.json) printJson(out);
          else process.stdout.write(`registered EK ${out.ekHash}\n`);
          process.exitCode = EXIT.ok;
        } finally {
          await store.close();
        }
      },
    );
}
