import type { Random } from "../runtime/clock.js";
import { deviceTransport, swtpmTransport, TpmClient, type TpmTransport } from "../tpm/client/index.js";
import { AGENT_CODES, AgentError } from "./errors.js";

// How an agent names its TPM on the command line and in its state:
//   device:/dev/tpmrm0        the kernel resource manager (the default on a real host)
//   swtpm:HOST:PORT           a swtpm server socket over TCP (control channel on PORT+1)
//   swtpm:unix:PATH           a swtpm server socket on a unix path (control on PATH.ctrl)

export type TpmSpec =
  | { readonly kind: "device"; readonly path: string }
  | { readonly kind: "swtpm-tcp"; readonly host: string; readonly port: number }
  | { readonly kind: "swtpm-unix"; readonly path: string };

export const DEFAULT_TPM = "device:/dev/tpmrm0";

function invalid(text: string, why: string): AgentError {
  return new AgentError(
    AGENT_CODES.usage,
    `--tpm ${JSON.stringify(text)}: ${why} (device:/dev/tpmrm0, swtpm:HOST:PORT or swtpm:unix:PATH)`,
  );
}

export function parseTpmSpec(text: string): TpmSpec {
  if (text.startsWith("device:")) {
    const path = text.slice("device:".length);
    if (!path.startsWith("/")) throw invalid(text, "a device is an absolute path");
    return { kind: "device", path };
  }
  if (text.startsWith("swtpm:unix:")) {
    const path = text.slice("swtpm:unix:".length);
    if (path.length === 0) throw invalid(text, "no socket path");
    return { kind: "swtpm-unix", path };
  }
  if (text.startsWith("swtpm:")) {
    const rest = text.slice("swtpm:".length);
    const i = rest.lastIndexOf(":");
    const host = rest.slice(0, i).replace(/^\[(.*)\]$/, "$1");
    const port = Number(rest.slice(i + 1));
    if (i <= 0 || host.length === 0) throw invalid(text, "expected swtpm:HOST:PORT");
    if (!Number.isInteger(port) || port < 1 || port > 65534) throw invalid(text, "the port is not 1-65534");
    return { kind: "swtpm-tcp", host, port };
  }
  throw invalid(text, "unknown kind");
}

export function formatTpmSpec(s: TpmSpec): string {
  switch (s.kind) {
    case "device":
      return `device:${s.path}`;
    case "swtpm-unix":
      return `swtpm:unix:${s.path}`;
    case "swtpm-tcp":
      return `swtpm:${s.host.includes(":") ? `[${s.host}]` : s.host}:${s.port}`;
  }
}

/** The transport for a spec; RSA key generation on a slow TPM can take seconds, hence 60 s. */
export function tpmTransport(s: TpmSpec, timeoutMs = 60_000): TpmTransport {
  switch (s.kind) {
    case "device":
      return deviceTransport(s.path);
    case "swtpm-unix":
      return swtpmTransport({ path: s.path }, { timeoutMs });
    case "swtpm-tcp":
      return swtpmTransport({ host: s.host, port: s.port }, { timeoutMs });
  }
}

/** A TPM client on the TPM a spec names; the randomness is for session nonces. */
export function openTpm(spec: string | TpmSpec, random: Random): TpmClient {
  return new TpmClient(tpmTransport(typeof spec === "string" ? parseTpmSpec(spec) : spec), { random });
}
