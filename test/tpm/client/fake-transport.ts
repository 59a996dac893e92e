import type { TpmTransport } from "../../../src/tpm/client/index.js";

/** Answers each command with the next canned response, and records what was sent. */
export class ScriptedTransport implements TpmTransport {
  readonly sent: Buffer[] = [];
  closed = false;

  constructor(private readonly responses: Buffer[]) {}

  async send(command: Buffer): Promise<Buffer> {
    this.sent.push(command);
    const next = this.responses.shift();
    if (!next) throw new Error("ScriptedTransport: no response left");
    return next;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A bare error response: TPM_ST_NO_SESSIONS, size 10, the code. */
export function errorResponse(rc: number): Buffer {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(0x8001, 0);
  b.writeUInt32BE(10, 2);
  b.writeUInt32BE(rc, 6);
  return b;
}
