import { generateKeyPairSync } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import type { Logger } from "pino";
import { buildBundle, bundlePem } from "../authority/bundle.js";
import { type CaState, fingerprint, loadOrCreateCa, toPem } from "../authority/ca-state.js";
import { loadChallengeKey } from "../authority/challenges.js";
import type { TickResult } from "../authority/rotation-intermediate.js";
import { LiveCa } from "../authority/rotation-live.js";
import type { SweepResult } from "../authority/zombies.js";
import type { ResolvedConfig } from "../config/load.js";
import { loadEkTrustStore } from "../devices/ek-trust-store.js";
import type { EvidenceRegistry } from "../evidence/registry.js";
import type { KeyStore } from "../keys/keystore.js";
import { keyStoreConfigFor, openKeyStore } from "../keys/open.js";
import type { Clock, Random } from "../runtime/clock.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";
import { buildServerCertificate, newSerial } from "../x509/index.js";
import { createRequestListener, type RequestListenerOptions } from "./app.js";
import { devPassphrase } from "./dev-passphrase.js";
import { mdmServices } from "./mdm.js";
import { createMetrics } from "./metrics.js";
import { ownerServices, startSweeper } from "./owners.js";
import { startTidy } from "./tidy.js";

/** A database URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "redacted";
    return u.protocol === "sqlite:" ? url : u.toString();
  } catch {
    return url.replace(/:\/\/([^:/@]+):[^@]*@/, "://$1:redacted@");
  }
}

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  store: Store;
  keys: KeyStore;
  /** The CA state now (it changes when a rotation step is taken, here or on another replica). */
  readonly ca: CaState;
  /** One rotation tick then a re-read of the store, and a re-read alone (the timer does both). */
  rotation: { tick(): Promise<TickResult>; refresh(): Promise<boolean> };
  /** One zombie sweep now (the timer runs one every agents.sweepInterval). */
  sweep(): Promise<SweepResult>;
  close(): Promise<void>;
}

/**
 * The composition root of `mayfly serve`: data directory, store, keys, CA, the
 * CA's own TLS certificate, the app, the listener. Logs where everything is.
 */
export async function startServer(
  rc: ResolvedConfig,
  deps: {
    clock: Clock;
    random: Random;
    log: Logger;
    evidence: EvidenceRegistry;
    /** Tests only: which path answers the issuance routes (app.ts createRequestListener). */
    listener?: RequestListenerOptions;
  },
): Promise<RunningServer> {
  const { clock, random, log, evidence } = deps;
  const { config } = rc;
  await mkdir(rc.dataDir, { recursive: true, mode: 0o700 });
  log.info({ config: rc.source ?? "(embedded defaults)", dataDir: rc.dataDir }, "mayfly starting");

  const store = await openStore(rc.storeUrl, { durability: config.store.durability });
  await store.migrate();
  log.info({ store: store.kind, url: redactUrl(rc.storeUrl) }, "store ready");
  // Shared by every process and replica on this store: a nonce minted by one verifies in all.
  const challengeKey = await loadChallengeKey(store, random);

  const keyConfig = await keyStoreConfigFor(config.keys, rc.keysDir, async () => {
    if (rc.passphrase) return rc.passphrase;
    const dev = await devPassphrase(rc.keysDir);
    log.warn(
      { passphraseFile: dev.path, created: dev.created },
      "using a development key passphrase stored beside the keys",
    );
    return dev.ref;
  });
  const keyWhere =
    keyConfig.kind === "pkcs11"
      ? { module: keyConfig.module, tokenLabel: keyConfig.tokenLabel }
      : { keysDir: rc.keysDir };
  const keys = await openKeyStore(keyConfig, { onWarning: (message) => log.warn(keyWhere, message) });
  log.info({ keystore: keys.kind, ...keyWhere }, "key store ready");

  const loaded = await loadOrCreateCa({ store, keys, clock, random, config });
  const created = loaded.created;
  const rootPath = join(rc.dataDir, "root.pem");
  const bundlePath = join(rc.dataDir, "bundle.pem");
  const currentRoot = (s: CaState) => s.roots.find((r) => r.slot === "current") ?? s.roots[0]!;
  const writeTrustFiles = async (s: CaState) => {
    await writeFile(rootPath, toPem(currentRoot(s).der), { mode: 0o644 });
    await writeFile(bundlePath, bundlePem(buildBundle(s, config.ca.trustDomain)), { mode: 0o644 });
  };
  // Rotation swaps the state: new issuer, files, and the listener's certificate (set below).
  let onCaChange: (s: CaState) => Promise<void> = writeTrustFiles;
  const live = await LiveCa.start(loaded.state, {
    store,
    keys,
    clock,
    random,
    config,
    log,
    onChange: (s) => onCaChange(s),
  });
  const state = live.state();
  const root = currentRoot(state);
  await writeTrustFiles(state);
  if (created || config.ca.createDevRoot) {
    log.warn(
      { root: rootPath, fingerprint: fingerprint(root.der) },
      "!!! DEVELOPMENT ROOT: this CA created its own root on first start. Do not trust it outside development. !!!",
    );
  }
  log.info(
    {
      root: rootPath,
      rootFingerprintSha256: fingerprint(root.der),
      bundle: bundlePath,
      issuer: state.issuer.record.id,
      issuerNotAfter: new Date(state.issuer.notAfter).toISOString(),
    },
    created ? "created development root and intermediate" : "loaded CA",
  );

  // The CA's own listener certificate: a fresh key per start, kept in memory only, and
  // re-issued by the new issuer when a rotation swaps it. During a root rotation the cross
  // certificate (new root by old root) follows, so clients holding only the old root connect.
  const tlsKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const tlsFor = async (s: CaState) => {
    const now = clock.now();
    const cert = await buildServerCertificate({
      issuerCertificate: s.issuer.record.der,
      issuerSigner: s.issuer.signer,
      subjectPublicKey: tlsKey.publicKey.export({ type: "spki", format: "der" }),
      serial: newSerial(random),
      dnsNames: config.server.tlsDnsNames,
      ipAddresses: config.server.tlsIpAddresses,
      notBefore: now - 60_000,
      notAfter: Math.min(now + config.server.tlsCertLifetime, s.issuer.notAfter),
    });
    const cross = s.crossSigned.filter((c) => c.subjectId === currentRoot(s).id).map((c) => toPem(c.der));
    return {
      key: tlsKey.privateKey.export({ type: "pkcs8", format: "pem" }),
      cert: toPem(cert.der) + toPem(s.issuer.record.der) + cross.join(""),
      minVersion: "TLSv1.2" as const,
    };
  };

  const ekTrustDir = resolve(config.devices.ekTrustDir);
  const ekTrust = await loadEkTrustStore(ekTrustDir);
  const trustLog = { ekTrustDir, roots: ekTrust.rootCount, intermediates: ekTrust.intermediateCount };
  if (ekTrust.rootCount === 0)
    log.warn(trustLog, "no TPM manufacturer roots: only registered EKs can activate");
  else log.info(trustLog, "TPM manufacturer trust loaded");

  const metrics = createMetrics();
  const owners = await ownerServices(config, { clock, log });
  const mdm = await mdmServices(config, { clock, log });
  const listener = createRequestListener(
    {
      store,
      clock,
      random,
      evidence,
      config,
      ca: () => live.state(),
      challengeKey,
      log,
      metrics,
      ekTrust,
      ...owners,
      mdm,
    },
    deps.listener,
  );
  const server = createServer(await tlsFor(state), listener);
  onCaChange = async (s) => {
    await writeTrustFiles(s);
    server.setSecureContext(await tlsFor(s));
  };
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(rc.listen.port, rc.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Certificate rows past store.certificateRetention.
  const stopTidy = startTidy({
    store,
    clock,
    log,
    certificateRetention: config.store.certificateRetention,
  });
  const port = (server.address() as AddressInfo).port;
  const host = rc.listen.host.includes(":") ? `[${rc.listen.host}]` : rc.listen.host;
  const url = `https://${host}:${port}`;
  log.info({ url, healthz: `${url}/healthz`, bundle: `${url}/v1/bundle` }, "mayfly serving");
  const sweeper = startSweeper({ store, clock, config, log, metrics });
  live.startTimer();
  return {
    url,
    port,
    server,
    store,
    keys,
    get ca() {
      return live.state();
    },
    rotation: { tick: () => live.tick(), refresh: () => live.refresh() },
    sweep: () => sweeper.runOnce(),
    async close() {
      await sweeper.stop();
      await live.stop();
      stopTidy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await keys.close();
      await store.close();
    },
  };
}
