import { MayflyError } from "../../errors/index.js";
import { malformed } from "../errors.js";

/**
 * Moves one marshalled command to a TPM and returns its whole response (header included).
 * Implementations keep one command in flight: a TPM without a resource manager (swtpm) or a
 * kernel device answers one command at a time, and interleaving would mix up responses.
 */
export interface TpmTransport {
  send(command: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

/** The TPM response header: tag u16, responseSize u32, responseCode u32. */
export const RESPONSE_HEADER_BYTES = 10;
/** Far above any TPM's MAX_RESPONSE_SIZE (4096 on most); bounds what a broken peer can make us buffer. */
export const MAX_RESPONSE_BYTES = 65536;
export const DEFAULT_TIMEOUT_MS = 60_000;

export function transportFailed(detail: string, cause?: unknown): MayflyError {
  return new MayflyError("tpm.transport_failed", detail, cause === undefined ? {} : { cause });
}

/** Runs tasks one after another, in call order, whatever each one's outcome. */
export class Serializer {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Accumulates response bytes until the size in the header is reached. Returns the frame once
 * complete, null while more is needed; throws when the header is impossible or bytes follow.
 */
export class ResponseFramer {
  private readonly chunks: Buffer[] = [];
  private received = 0;

  push(chunk: Buffer): Buffer | null {
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.received < RESPONSE_HEADER_BYTES) return null;
    const all = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks);
    const size = all.readUInt32BE(2);
    if (size < RESPONSE_HEADER_BYTES || size > MAX_RESPONSE_BYTES) {
      throw transportFailed(`response header announces ${size} bytes`);
    }
    if (this.received > size) {
      throw transportFailed(`${this.received - size} byte(s) after a ${size}-byte response`);
    }
    return this.received === size ? all : null;
  }

  get bytesReceived(): number {
    return this.received;
  }
}

/** The command header's size field must match what is sent: a TPM would answer TPM_RC_COMMAND_SIZE. */
export function checkCommandFrame(command: Buffer): void {
  if (command.length < RESPONSE_HEADER_BYTES || command.readUInt32BE(2) !== command.length) {
    throw malformed("command.commandSize", `a ${command.length}-byte command does not carry its own size`);
  }
}
