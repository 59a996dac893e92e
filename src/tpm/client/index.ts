// The TPM 2.0 command client an agent uses: transports (swtpm socket, /dev/tpmrm0), typed
// commands, and the few high-level operations enrolment and attestation need. Kept apart
// from ../index.ts, which stays pure computation without I/O for the CA.
export * from "./agent-operations.js";
export type { Attestation, CertifyOptions, PcrValues, Signed, SignOptions } from "./attestation-commands.js";
export type { TaggedProperty } from "./capability-commands.js";
export { TpmClient, type TpmClientOptions } from "./client.js";
export {
  type Authorization,
  type CommandResult,
  type CommandRunner,
  type CommandSpec,
  decodeResponse,
  EMPTY_PASSWORD,
  encodeCommand,
  type PolicySession,
  policyAuth,
} from "./command.js";
export * from "./constants.js";
export { type DeviceFile, type DeviceTransportOptions, deviceTransport } from "./device-transport.js";
export * from "./endorsement.js";
export type { EvictOptions, StartupType } from "./lifecycle-commands.js";
export type { NvReadOptions } from "./nv-commands.js";
export type { CreatedKey, CreatedPrimary, Creation, ObjectPublic } from "./object-commands.js";
export {
  commandFailed,
  type DecodedResponseCode,
  decodeResponseCode,
  describeResponseCode,
  RETRYABLE_RCS,
} from "./response-code.js";
export type { ActivateAuths, SessionType } from "./session-commands.js";
export { type NvPublic, type Ticket, TPMA_NV } from "./structures.js";
export {
  type SwtpmEndpoint,
  type SwtpmOptions,
  swtpmControlEndpoint,
  swtpmPowerOn,
  swtpmTransport,
} from "./swtpm-transport.js";
export * from "./templates.js";
export { type TpmTransport, transportFailed } from "./transport.js";
