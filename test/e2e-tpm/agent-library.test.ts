import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentError, CaClient, errorCode, errorStatus } from "../../src/agent/index.js";
import { isMayflyError } from "../../src/errors/index.js";
import { openssl } from "../helpers/openssl.js";

// The agent library on its own: its import graph stays on the agent's side of DESIGN.md's
// layers, and the CA client turns every kind of answer into a typed error with a code.

const SRC = resolve("src");
const IMPORT = /^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms;

/** Every module reachable from `entry` (relative imports), and every bare package it names. */
function importGraph(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const spec = m[1]!;
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec).replace(/\.js$/, ".ts"));
      else packages.add(spec.startsWith("node:") ? spec : spec.split("/")[0]!);
    }
  };
  visit(entry);
  return { files: [...files].map((f) => relative(SRC, f)).sort(), packages: [...packages].sort() };
}

describe("agent library", () => {
  it("never reaches the server, the store, the authority or express, even through other modules", () => {
    const { files, packages } = importGraph(join(SRC, "agent", "index.ts"));
    expect(files).toContain("tpm/client/index.ts");
    expect(files.filter((f) => /^(server|store|authority)\//.test(f))).toEqual([]);
    expect(packages.filter((p) => !p.startsWith("node:"))).toEqual([]);
  });

  describe("CA client errors", () => {
    let server: Server;
    let dir: string;
    let url: string;
    let certPem: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "mayfly-agent-client-"));
      const r = await openssl([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=fake-ca",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ]);
      expect(r.code, r.stderr).toBe(0);
      certPem = readFileSync(join(dir, "cert.pem"), "utf8");
      server = createServer({ key: readFileSync(join(dir, "key.pem")), cert: certPem }, (req, res) => {
        const problem = (status: number, body: unknown) =>
          res.writeHead(status, { "content-type": "application/problem+json" }).end(JSON.stringify(body));
        switch (req.url) {
          case "/known":
            return problem(403, {
              type: "urn:mayfly:problem:owner.inactive",
              code: "owner.inactive",
              detail: "gone",
              status: 403,
            });
          case "/unknown":
            return problem(409, { code: "agent.quarantined", detail: "mover", field: "agentId" });
          case "/html":
            return res.writeHead(502, { "content-type": "text/html" }).end("<html>bad gateway</html>");
          case "/array":
            return res.writeHead(200, { "content-type": "application/json" }).end("[1]");
          default:
            return res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
        }
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((r) => server?.close(r));
      rmSync(dir ?? "/nonexistent", { recursive: true, force: true });
    });

    async function failure(c: CaClient, path: string) {
      return c.request("GET", path).then(
        () => {
          throw new Error(`${path} succeeded`);
        },
        (e: unknown) => e,
      );
    }

    it("a registered code is a MayflyError; an unknown one an AgentError with the CA's string", async () => {
      const c = new CaClient({ url, ca: certPem });
      try {
        expect(await c.request("GET", "/fine")).toEqual({ ok: true });
        const known = await failure(c, "/known");
        expect(isMayflyError(known)).toBe(true);
        expect([errorCode(known), errorStatus(known), (known as Error & { detail: string }).detail]).toEqual([
          "owner.inactive",
          403,
          "gone",
        ]);
        const unknown = await failure(c, "/unknown");
        expect(unknown).toBeInstanceOf(AgentError);
        expect(unknown).toMatchObject({
          code: "agent.quarantined",
          status: 409,
          detail: "mover",
          field: "agentId",
        });
        expect(await failure(c, "/html")).toMatchObject({ code: "ca.bad_response", status: 502 });
        expect(await failure(c, "/array")).toMatchObject({ code: "ca.bad_response", status: 200 });
      } finally {
        c.close();
      }
    });

    it("an untrusted CA certificate or a closed port is ca.unreachable", async () => {
      const other = await openssl([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=other",
        "-keyout",
        join(dir, "other.key"),
        "-out",
        join(dir, "other.pem"),
      ]);
      expect(other.code).toBe(0);
      const wrongCa = new CaClient({ url, ca: readFileSync(join(dir, "other.pem")) });
      const e = await failure(wrongCa, "/fine");
      wrongCa.close();
      expect(e).toMatchObject({ code: "ca.unreachable", status: null });
      expect((e as Error).message).toMatch(/self[- ]signed|unable to verify|certificate/i);
      const closed = new CaClient({ url: "https://127.0.0.1:1", ca: certPem, timeoutMs: 2000 });
      expect(await failure(closed, "/fine")).toMatchObject({ code: "ca.unreachable" });
      closed.close();
      expect(() => new CaClient({ url: "http://127.0.0.1:1", ca: certPem })).toThrow(/https/);
    });
  });
});
