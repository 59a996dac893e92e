import { connect, createServer } from "node:net";
import type { SwtpmEndpoint } from "../../../src/tpm/client/index.js";

// Ports for a TCP swtpm: a pair N, N+1 (the control channel must be N+1: gotcha G2) that is
// free on 127.0.0.1 right now. Never 2321/2322, where tctildr falls back (G4).

function listenOn(port: number): Promise<import("node:net").Server | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(null));
    srv.listen(port, "127.0.0.1", () => resolve(srv));
  });
}

export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const first = await listenOn(0);
    if (!first) continue;
    const addr = first.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    const second = port > 0 && port < 65535 && port !== 2321 ? await listenOn(port + 1) : null;
    await new Promise((r) => first.close(r));
    if (second) {
      await new Promise((r) => second.close(r));
      return port;
    }
  }
  throw new Error("no free TCP port pair on 127.0.0.1");
}

export function canConnect(endpoint: SwtpmEndpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const s = "path" in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
