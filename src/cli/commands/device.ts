import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { appendAudit } from "../../audit/index.js";
import { deviceView, unenrolDevice } from "../../authority/device-inventory.js";
import { ekPublicKeyHash } from "../../devices/ek-trust.js";
import { MayflyError } from "../../errors/index.js";
import { systemClock } from "../../runtime/clock.js";
import type { Store } from "../../store/store.js";
import type { Device, DeviceStatus } from "../../store/types.js";
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

const CONFIG_HELP = "configuration file (default: $MAYFLY_CONFIG or embedded defaults)";

async function withStore<T>(config: string | undefined, f: (store: Store) => Promise<T>): Promise<T> {
  const store = await openConfiguredStore(await resolveConfig(config));
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

async function mustGetDevice(store: Store, id: string): Promise<Device> {
  const d = await store.tx((tx) => tx.getDevice(id));
  if (!d) throw new MayflyError("device.not_found", `no device ${id}`);
  return d;
}

function deviceLine(d: Device): string {
  const posture = d.managed ? (d.compliant ? "managed,compliant" : "managed,non-compliant") : "unmanaged";
  const user = d.assignedUser ?? d.assignedOwnerId;
  return (
    `${d.id}  ${d.status}  ${posture}  mdm=${d.mdmId ?? "-"}  serial=${d.serial ?? "-"}  ` +
    `user=${user ?? "-"}  ak=${d.akPublic ? "yes" : "no"}\n`
  );
}

export function registerDevice(program: Command): void {
  const device = program
    .command("device")
    .description("devices and their endorsement keys: list, show, register, unenroll");
  device
    .command("list")
    .description("list devices (id, status, MDM posture, MDM id, serial, assigned user, activated AK)")
    .option("--status <status>", "only active or unenrolled devices")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (opts: { status?: string; config?: string; json?: boolean }) => {
      if (opts.status !== undefined && opts.status !== "active" && opts.status !== "unenrolled") {
        throw new MayflyError("request.invalid", "--status is active or unenrolled");
      }
      const statuses = opts.status ? [opts.status as DeviceStatus] : undefined;
      const devices = await withStore(opts.config, (store) =>
        store.tx(async (tx) => {
          const all: Device[] = [];
          let afterId: string | null = null;
          for (;;) {
            const page = await tx.listDevices({ ...(statuses ? { statuses } : {}), afterId, limit: 500 });
            all.push(...page);
            if (page.length < 500) return all;
            afterId = page[page.length - 1]!.id;
          }
        }),
      );
      if (opts.json) printJson({ ok: true, devices: devices.map(deviceView) });
      else {
        for (const d of devices) process.stdout.write(deviceLine(d));
        process.stdout.write(`${devices.length} device(s)\n`);
      }
      process.exitCode = EXIT.ok;
    });
  device
    .command("show <deviceId>")
    .description("one device: posture, MDM facts, EK and AK, its EK registration and its agents")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (deviceId: string, opts: { config?: string; json?: boolean }) => {
      const out = await withStore(opts.config, async (store) => {
        const d = await mustGetDevice(store, deviceId);
        return store.tx(async (tx) => {
          const reg = d.ekPubHash ? await tx.getEkRegistration(d.ekPubHash) : null;
          const agents = await tx.listAgentsByDevice(d.id);
          return {
            ok: true,
            device: deviceView(d),
            ekRegistration: reg && {
              source: reg.source,
              note: reg.note,
              createdAt: new Date(reg.createdAt).toISOString(),
            },
            agents: agents.map((a) => ({
              id: a.id,
              name: a.name,
              ownerId: a.ownerId,
              status: a.status,
              statusReason: a.statusReason ?? null,
            })),
          };
        });
      });
      if (opts.json) printJson(out);
      else {
        for (const [k, v] of Object.entries(out.device)) process.stdout.write(`${k}: ${v ?? "-"}\n`);
        process.stdout.write(
          `ekRegistration: ${out.ekRegistration ? `${out.ekRegistration.source} (${out.ekRegistration.createdAt})` : "-"}\n`,
        );
        for (const a of out.agents) {
          const why = a.statusReason ? ` (${a.statusReason})` : "";
          process.stdout.write(
            `agent: ${a.id}  ${a.status}${why}  owner=${a.ownerId}  ${JSON.stringify(a.name)}\n`,
          );
        }
      }
      process.exitCode = EXIT.ok;
    });
  device
    .command("unenroll <deviceId>")
    .description(
      "unenrol a device: its agents are suspended (device.unenrolled) and its EK registration removed; the MDM's next enrolment event re-enrols it",
    )
    .option("--note <text>", "why, for the audit log")
    .option("-c, --config <file>", CONFIG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (deviceId: string, opts: { note?: string; config?: string; json?: boolean }) => {
      const out = await withStore(opts.config, (store) =>
        store.tx(async (tx) => {
          const d = await tx.lockDevice(deviceId);
          if (!d) throw new MayflyError("device.not_found", `no device ${deviceId}`);
          if (d.status === "unenrolled") return { already: true, suspended: [], ekRegistrationRemoved: null };
          const u = await unenrolDevice(
            tx,
            systemClock,
            { ...d, status: "unenrolled", updatedAt: systemClock.now() },
            "cli",
            { note: opts.note ?? null },
          );
          return { already: false, ...u };
        }),
      );
      if (opts.json) {
        printJson({
          ok: true,
          deviceId,
          status: "unenrolled",
          alreadyUnenrolled: out.already,
          suspendedAgents: out.suspended,
          ekRegistrationRemoved: out.ekRegistrationRemoved?.source ?? null,
        });
      } else if (out.already) process.stdout.write(`device ${deviceId} was already unenrolled\n`);
      else {
        process.stdout.write(
          `device ${deviceId} unenrolled; ${out.suspended.length} agent(s) suspended` +
            (out.ekRegistrationRemoved
              ? `; EK registration (${out.ekRegistrationRemoved.source}) removed`
              : "") +
            "\n",
        );
      }
      process.exitCode = EXIT.ok;
    });
  device
    .command("register")
    .description(
      "vouch for a TPM by its EK (SHA-256 of its SubjectPublicKeyInfo DER) so it can activate without an EK certificate",
    )
    .option("--ek-hash <hex>", "SHA-256 of the EK SubjectPublicKeyInfo DER, 64 hex digits")
    .option("--ek-public <file>", "the EK public area (TPM2B_PUBLIC, as `tpm2_createek -f tss` writes it)")
    .option("--note <text>", "why, for the audit log")
    .option("-c, --config <file>", CONFIG_HELP)
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
