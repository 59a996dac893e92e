import { spawn } from "node:child_process";
import { webcrypto, X509Certificate } from "node:crypto";
import { createServer as netServer } from "node:net";
import { connect, createServer, type PeerCertificate, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTemp } from "../helpers/openssl.js";
import { issueVia, newAgentKey, startTestCa, type TestCa } from "../helpers/test-ca.js";

let ca: TestCa;
interface Identity {
  spiffeId: string;
  keyPem: string;
  certPem: string;
  chainPem: string;
}
let a: Identity;
let b: Identity;

async function identity(): Promise<Identity> {
  const agent = await ca.seedAgent();
  const key = await newAgentKey();
  const { res } = await issueVia(ca, agent, key);
  expect(res.status).toBe(201);
  const out = res.json as { certificate: string; chain: string[] };
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n")}\n-----END PRIVATE KEY-----\n`;
  return {
    spiffeId: `spiffe://mayfly.internal/agent/${agent.agentId}`,
    keyPem,
    certPem: out.certificate,
    chainPem: out.chain.join(""),
  };
}

function spiffeIdOf(peer: PeerCertificate): string | null {
  const m = /^URI:(spiffe:\/\/[^,]+)$/.exec(peer.subjectaltname ?? "");
  return m ? m[1]! : null;
}

beforeAll(async () => {
  ca = await startTestCa();
  a = await identity();
  b = await identity();
});
afterAll(async () => {
  await ca?.close();
});

describe("mTLS with Mayfly leaves", () => {
  it("Node tls server and client authenticate each other by SPIFFE ID", async () => {
    const server = createServer(
      {
        key: a.keyPem,
        cert: a.certPem + a.chainPem,
        ca: ca.rootPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      },
      (sock: TLSSocket) => {
        const peer = spiffeIdOf(sock.getPeerCertificate());
        sock.end(`hello ${peer}`);
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const reply = await new Promise<{ text: string; peer: string | null }>((resolve, reject) => {
        const sock = connect({
          host: "127.0.0.1",
          port,
          key: b.keyPem,
          cert: b.certPem + b.chainPem,
          ca: ca.rootPem,
          // Mayfly leaves name a SPIFFE ID, not a host: authorise the peer by it.
          checkServerIdentity: (_host, cert) =>
            spiffeIdOf(cert) === a.spiffeId ? undefined : new Error(`unexpected peer ${spiffeIdOf(cert)}`),
        });
        let text = "";
        let peer: string | null = null;
        sock.on("secureConnect", () => {
          peer = spiffeIdOf(sock.getPeerCertificate());
        });
        sock.on("data", (d) => {
          text += d.toString();
        });
        sock.on("end", () => resolve({ text, peer }));
        sock.on("error", reject);
      });
      expect(reply.peer).toBe(a.spiffeId);
      expect(reply.text).toBe(`hello ${b.spiffeId}`);
    } finally {
      server.close();
    }
  });

  it("a client without a certificate is refused", async () => {
    const server = createServer({
      key: a.keyPem,
      cert: a.certPem + a.chainPem,
      ca: ca.rootPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const outcome = await new Promise<string>((resolve) => {
        const sock = connect({
          host: "127.0.0.1",
          port,
          ca: ca.rootPem,
          checkServerIdentity: () => undefined,
        });
        sock.on("data", () => resolve("data"));
        sock.on("error", (e) => resolve(`error:${(e as NodeJS.ErrnoException).code ?? e.message}`));
        sock.on("end", () => resolve("end"));
      });
      expect(outcome).toMatch(/^error:|^end$/);
    } finally {
      server.close();
    }
  });

  it("openssl s_server -Verify and s_client complete a strict mTLS handshake", async () => {
    const dir = ca.dir;
    const files = {
      aKey: await writeTemp(dir, "a.key", a.keyPem),
      aCert: await writeTemp(dir, "a.pem", a.certPem),
      aChain: await writeTemp(dir, "a.chain.pem", a.chainPem),
      bKey: await writeTemp(dir, "b.key", b.keyPem),
      bCert: await writeTemp(dir, "b.pem", b.certPem),
      bChain: await writeTemp(dir, "b.chain.pem", b.chainPem),
      root: await writeTemp(dir, "root.pem", ca.rootPem),
    };
    const port = await freePort();
    const server = spawn("openssl", [
      "s_server",
      "-accept",
      `127.0.0.1:${port}`,
      "-naccept",
      "1",
      "-Verify",
      "2",
      "-verify_return_error",
      "-x509_strict",
      "-cert",
      files.aCert,
      "-key",
      files.aKey,
      "-cert_chain",
      files.aChain,
      "-CAfile",
      files.root,
      "-tls1_3",
    ]);
    let serverOut = "";
    server.stdout.on("data", (d) => (serverOut += d));
    server.stderr.on("data", (d) => (serverOut += d));
    await waitFor(() => serverOut.includes("ACCEPT"), 5000);
    const client = spawn("openssl", [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-verify_return_error",
      "-x509_strict",
      "-verify",
      "2",
      "-cert",
      files.bCert,
      "-key",
      files.bKey,
      "-cert_chain",
      files.bChain,
      "-CAfile",
      files.root,
      "-tls1_3",
    ]);
    let clientOut = "";
    client.stdout.on("data", (d) => (clientOut += d));
    client.stderr.on("data", (d) => (clientOut += d));
    await waitFor(
      () => clientOut.includes("Verify return code") && serverOut.includes("CIPHER is"),
      10_000,
    ).catch(() => {});
    client.stdin.end("Q\n");
    const clientCode = await new Promise<number | null>((r) => client.on("close", r));
    server.kill();
    expect(clientOut).toMatch(/Verify return code: 0 \(ok\)/);
    expect(clientOut).toContain("Verification: OK");
    expect(serverOut).not.toMatch(/verify error/);
    expect(serverOut).toMatch(/depth=0 [\s\S]*verify return:1/);
    // The server saw B's certificate: its PEM is printed after "Client certificate".
    const printed = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
      serverOut.slice(serverOut.indexOf("Client certificate")),
    );
    expect(printed).not.toBeNull();
    expect(new X509Certificate(printed![0]).subjectAltName).toBe(`URI:${b.spiffeId}`);
    expect(clientCode).toBe(0);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = netServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}
