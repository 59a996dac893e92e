import { open } from "node:fs/promises";
import { isMayflyError } from "../../errors/index.js";
import {
  checkCommandFrame,
  MAX_RESPONSE_BYTES,
  ResponseFramer,
  Serializer,
  type TpmTransport,
  transportFailed,
} from "./transport.js";

// The Linux TPM character devices: /dev/tpmrm0 (through the kernel resource manager) or
// /dev/tpm0. The kernel takes a whole command in one write() and hands back the whole
// response on the following read(s). The file stays open for the transport's lifetime:
// with /dev/tpmrm0 the kernel flushes a client's transient objects and sessions on close.

/** The two calls the transport makes on an open device; an injection point for tests. */
export interface DeviceFile {
  write(bytes: Buffer): Promise<number>;
  read(into: Buffer): Promise<number>;
  close(): Promise<void>;
}

async function openDevice(path: string): Promise<DeviceFile> {
  const fh = await open(path, "r+");
  return {
    write: async (bytes) => (await fh.write(bytes, 0, bytes.length, null)).bytesWritten,
    read: async (into) => (await fh.read(into, 0, into.length, null)).bytesRead,
    close: () => fh.close(),
  };
}

export interface DeviceTransportOptions {
  /** Opens the device; defaults to fs.open(path, "r+"). */
  readonly open?: (path: string) => Promise<DeviceFile>;
}

class DeviceTransport implements TpmTransport {
  private readonly queue = new Serializer();
  private file: DeviceFile | null = null;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly opener: (path: string) => Promise<DeviceFile>,
  ) {}

  private async device(): Promise<DeviceFile> {
    if (this.closed) throw transportFailed(`${this.path}: the transport is closed`);
    if (!this.file) {
      try {
        this.file = await this.opener(this.path);
      } catch (e) {
        throw transportFailed(`${this.path}: ${(e as Error).message}`, e);
      }
    }
    return this.file;
  }

  send(command: Buffer): Promise<Buffer> {
    checkCommandFrame(command);
    return this.queue.run(async () => {
      const file = await this.device();
      try {
        const written = await file.write(command);
        if (written !== command.length) {
          throw transportFailed(`${this.path}: wrote ${written} of ${command.length} bytes`);
        }
        const framer = new ResponseFramer();
        const buf = Buffer.alloc(MAX_RESPONSE_BYTES);
        for (;;) {
          const n = await file.read(buf);
          if (n === 0) throw transportFailed(`${this.path}: end of file after ${framer.bytesReceived} bytes`);
          const frame = framer.push(Buffer.from(buf.subarray(0, n)));
          if (frame) return frame;
        }
      } catch (e) {
        // After a failed exchange the device may still hold half a response: start afresh.
        await this.drop();
        if (isMayflyError(e)) throw e;
        throw transportFailed(`${this.path}: ${(e as Error).message}`, e);
      }
    });
  }

  private async drop(): Promise<void> {
    const f = this.file;
    this.file = null;
    await f?.close().catch(() => undefined);
  }

  close(): Promise<void> {
    return this.queue.run(async () => {
      this.closed = true;
      await this.drop();
    });
  }
}

export function deviceTransport(path = "/dev/tpmrm0", opts: DeviceTransportOptions = {}): TpmTransport {
  return new DeviceTransport(path, opts.open ?? openDevice);
}
