import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMayflyError, type MayflyError } from "../../../src/errors/index.js";
import {
  createEk,
  type DeviceFile,
  deviceTransport,
  swtpmPowerOn,
  swtpmTransport,
  TpmClient,
  type TpmTransport,
} from "../../../src/tpm/client/index.js";
import { seededRandom } from "../helpers/seeded-random.js";
import { Swtpm } from "../helpers/swtpm.js";
import { freePortPair } from "../helpers/swtpm-ports.js";

// The transports against real swtpm sockets (TCP and unix), swtpm's control channel, and the
// character-device transport over a stand-in device (no /dev/tpmrm0 in CI) whose writes and
// reads go to swtpm, delivered in pieces as a kernel may.

const random = seededRandom("transports");

async function failure(p: Promise<unknown>): Promise<MayflyError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isMayflyError(e), `expected a MayflyError, got ${String(e)}`).toBe(true);
  return e as MayflyError;
}

describe("swtpm over TCP, powered on through the control channel", () => {
  let sw: Swtpm;
  beforeAll(async () => {
    sw = await Swtpm.start({ tcp: true, poweredOff: true });
  }, 30_000);
  afterAll(async () => {
    await sw?.stop();
  });

  it("refuses commands before power-on, then works after CMD_INIT + TPM2_Startup", async () => {
    const tpm = new TpmClient(swtpmTransport(sw.server), { random });
    // Before TPM_Init libtpms answers TPM_RC_FAILURE (gotcha G5).
    expect((await failure(tpm.getRandom(8))).extra).toMatchObject({ name: "TPM_RC_FAILURE" });
    await swtpmPowerOn(sw.server);
    expect(await tpm.getRandom(16)).toHaveLength(16);
    // Started already: a second Startup is TPM_RC_INITIALIZE.
    expect((await failure(tpm.startup("clear"))).extra).toMatchObject({ name: "TPM_RC_INITIALIZE" });
    // Power-cycling again is fine (TPM_Init resets, Startup(CLEAR) restarts).
    await swtpmPowerOn(sw.server);
    expect(await tpm.getRandom(32)).toHaveLength(32);
    await tpm.close();
    expect((await failure(tpm.getRandom(8))).code).toBe("tpm.transport_failed");
  });
});

describe("swtpm over a unix socket", () => {
  let sw: Swtpm;
  let tpm: TpmClient;
  beforeAll(async () => {
    sw = await Swtpm.start();
    tpm = new TpmClient(swtpmTransport(sw.server), { random });
  }, 30_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it("keeps one command in flight: 20 concurrent commands all get their own answer", async () => {
    const sizes = Array.from({ length: 20 }, (_, i) => 1 + i);
    const got = await Promise.all(sizes.map((n) => tpm.getRandom(n)));
    expect(got.map((b) => b.length)).toEqual(sizes);
  });

  it("holds no connection between commands, so tpm2-tools can use the same swtpm", async () => {
    await tpm.getRandom(4);
    expect(sw.tryRun("tpm2_getrandom", ["4"]).status).toBe(0);
    await tpm.getRandom(4);
  });

  it("reports what it cannot reach as tpm.transport_failed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mayfly-nosock-"));
    try {
      const unix = new TpmClient(swtpmTransport({ path: join(dir, "absent") }), { random });
      expect((await failure(unix.getRandom(1))).code).toBe("tpm.transport_failed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const port = await freePortPair(); // free right now: nothing listens there
    const tcp = new TpmClient(swtpmTransport({ host: "127.0.0.1", port }), { random });
    expect((await failure(tcp.getRandom(1))).code).toBe("tpm.transport_failed");
    expect((await failure(swtpmPowerOn({ host: "127.0.0.1", port }))).code).toBe("tpm.transport_failed");
  });

  it("a character device: one write per command, the response read back in pieces", async () => {
    const backend: TpmTransport = swtpmTransport(sw.server);
    const writes: number[] = [];
    let opened = 0;
    let pending: Buffer | null = null;
    const fake: DeviceFile = {
      async write(bytes) {
        writes.push(bytes.length);
        pending = await backend.send(Buffer.from(bytes));
        return bytes.length;
      },
      async read(into) {
        if (!pending) return 0;
        const n = Math.min(7, pending.length, into.length); // a stingy kernel
        pending.copy(into, 0, 0, n);
        pending = pending.length > n ? pending.subarray(n) : null;
        return n;
      },
      async close() {},
    };
    const dev = new TpmClient(
      deviceTransport("/dev/fake-tpmrm0", {
        open: async () => {
          opened++;
          return fake;
        },
      }),
      { random },
    );
    const ek = await createEk(dev, "ecc256");
    await dev.flushContext(ek.handle);
    expect(await dev.getRandom(8)).toHaveLength(8);
    expect(opened).toBe(1); // kept open: /dev/tpmrm0 flushes a client's objects on close
    expect(writes).toHaveLength(3);
    await dev.close();
    expect((await failure(dev.getRandom(1))).code).toBe("tpm.transport_failed");
  });

  it("a device that ends early or cannot be opened is tpm.transport_failed", async () => {
    const eof: DeviceFile = { write: async (b) => b.length, read: async () => 0, close: async () => {} };
    const dev = new TpmClient(deviceTransport("/dev/x", { open: async () => eof }), { random });
    expect((await failure(dev.getRandom(1))).detail).toMatch(/end of file after 0 bytes/);
    const short: DeviceFile = {
      write: async (b) => b.length - 1,
      read: async () => 0,
      close: async () => {},
    };
    const dev2 = new TpmClient(deviceTransport("/dev/x", { open: async () => short }), { random });
    expect((await failure(dev2.getRandom(1))).detail).toMatch(/wrote/);
    const none = new TpmClient(deviceTransport(join(tmpdir(), "mayfly-no-such-tpm")), { random });
    expect((await failure(none.getRandom(1))).code).toBe("tpm.transport_failed");
  });
});
