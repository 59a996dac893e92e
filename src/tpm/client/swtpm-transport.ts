import { connect } from "node:net";
import { TPM_CC, TPM_ST_NO_SESSIONS, TPM_SU } from "./constants.js";
import { commandFailed } from "./response-code.js";
import {
  checkCommandFrame,
  DEFAULT_TIMEOUT_MS,
  ResponseFramer,
  Serializer,
  type TpmTransport,
  transportFailed,
} from "./transport.js";

// swtpm's server socket (`--server type=tcp|unixio`) carries bare TPM 2.0 command and
// response bytes: no TCG simulator (mssim) framing. Like the tss2 swtpm TCTI, we open one
// connection per command and close it after the response: swtpm serves one client at a time
// (listen backlog 1), so a held connection would lock out tpm2-tools and other clients.
// Transient objects and sessions live in the TPM, not in the connection, and survive this.

export type SwtpmEndpoint = { readonly host: string; readonly port: number } | { readonly path: string };

export interface SwtpmOptions {
  /** Per exchange; RSA key generation on a slow host can take seconds. */
  readonly timeoutMs?: number;
}

/** The control channel the swtpm TCTI assumes: port + 1, or path + ".ctrl" (gotcha G2). */
export function swtpmControlEndpoint(server: SwtpmEndpoint): SwtpmEndpoint {
  return "path" in server ? { path: `${server.path}.ctrl` } : { host: server.host, port: server.port + 1 };
}

function describe(e: SwtpmEndpoint): string {
  return "path" in e ? `unix:${e.path}` : `tcp:${e.host}:${e.port}`;
}

/** One request/response exchange on a fresh connection; `framer` says when the answer is whole. */
function exchange(
  endpoint: SwtpmEndpoint,
  request: Buffer,
  framer: { push(chunk: Buffer): Buffer | null },
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const where = describe(endpoint);
    const socket = "path" in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
    let settled = false;
    const finish = (err: unknown, frame?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (frame) resolve(frame);
      else reject(err);
    };
    const timer = setTimeout(
      () => finish(transportFailed(`${where}: no response in ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk: Buffer) => {
      try {
        const frame = framer.push(chunk);
        if (frame) finish(undefined, frame);
      } catch (e) {
        finish(e);
      }
    });
    socket.on("error", (e) => finish(transportFailed(`${where}: ${e.message}`, e)));
    socket.on("close", () => finish(transportFailed(`${where}: connection closed before a whole response`)));
  });
}

class SwtpmSocketTransport implements TpmTransport {
  private readonly queue = new Serializer();
  private closed = false;

  constructor(
    private readonly server: SwtpmEndpoint,
    private readonly timeoutMs: number,
  ) {}

  send(command: Buffer): Promise<Buffer> {
    checkCommandFrame(command);
    return this.queue.run(() => {
      if (this.closed) return Promise.reject(transportFailed("the swtpm transport is closed"));
      return exchange(this.server, command, new ResponseFramer(), this.timeoutMs);
    });
  }

  close(): Promise<void> {
    // Waits for a command in flight; nothing else is held open between commands.
    return this.queue.run(async () => {
      this.closed = true;
    });
  }
}

export function swtpmTransport(server: SwtpmEndpoint, opts: SwtpmOptions = {}): TpmTransport {
  return new SwtpmSocketTransport(server, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
}

/** swtpm control-channel commands (swtpm's tpm_ioctl.h; u32 code, then the payload). */
const CMD_INIT = 0x02;

/** Fixed-length control responses: a u32 result, 0 on success. */
function fixedFramer(length: number): { push(chunk: Buffer): Buffer | null } {
  const chunks: Buffer[] = [];
  let n = 0;
  return {
    push(chunk) {
      chunks.push(chunk);
      n += chunk.length;
      if (n > length) throw transportFailed(`control channel sent ${n} bytes, expected ${length}`);
      return n === length ? Buffer.concat(chunks) : null;
    },
  };
}

/**
 * Powers a swtpm on the way firmware would: TPM_Init over the control channel (CMD_INIT),
 * then TPM2_Startup(CLEAR). Needed when swtpm runs without `--flags not-need-init,startup-clear`
 * (gotcha G5); before it every command fails with TPM_RC_FAILURE, after CMD_INIT alone with
 * TPM_RC_INITIALIZE.
 */
export async function swtpmPowerOn(
  server: SwtpmEndpoint,
  opts: SwtpmOptions & { readonly control?: SwtpmEndpoint } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const control = opts.control ?? swtpmControlEndpoint(server);
  const init = Buffer.alloc(8);
  init.writeUInt32BE(CMD_INIT, 0);
  init.writeUInt32BE(0, 4); // init flags: keep volatile state
  const answer = await exchange(control, init, fixedFramer(4), timeoutMs);
  const result = answer.readUInt32BE(0);
  if (result !== 0) throw transportFailed(`${describe(control)}: CMD_INIT answered 0x${result.toString(16)}`);
  const startup = Buffer.alloc(12);
  startup.writeUInt16BE(TPM_ST_NO_SESSIONS, 0);
  startup.writeUInt32BE(12, 2);
  startup.writeUInt32BE(TPM_CC.Startup, 6);
  startup.writeUInt16BE(TPM_SU.CLEAR, 10);
  const response = await exchange(server, startup, new ResponseFramer(), timeoutMs);
  const rc = response.readUInt32BE(6);
  if (rc !== 0) throw commandFailed("TPM2_Startup", rc);
}
