import type { Logger } from "pino";
import type { CaState } from "../authority/ca-state.js";
import type { Config } from "../config/schema.js";
import type { EkTrustStore } from "../devices/ek-trust-store.js";
import type { MdmVerifier } from "../devices/mdm-verifier.js";
import type { EvidenceRegistry } from "../evidence/registry.js";
import type { OidcVerifier } from "../owners/oidc-verifier.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store } from "../store/store.js";
import type { Metrics } from "./metrics.js";

/** Everything a route needs, built once by the composition root (cli/serve or a test). */
export interface ServerContext {
  store: Store;
  clock: Clock;
  random: Random;
  evidence: EvidenceRegistry;
  config: Config;
  ca: () => CaState;
  /**
   * The key that MACs challenge nonces (authority/challenges.ts), read from the store
   * once at start so that every process and replica shares it.
   */
  challengeKey: Buffer;
  /** TPM manufacturer CAs that vouch for EKs. */
  ekTrust: EkTrustStore;
  log: Logger;
  metrics: Metrics;
  /** Verifies owners' ID tokens; null when owners.oidc.issuer is not configured. */
  oidc: OidcVerifier | null;
  /** The SCIM provisioning client's bearer token; null: /scim/v2 is not mounted. */
  scimToken: string | null;
  /** Verifies device-management hook events; null or absent: /v1/hooks/mdm answers mdm.not_configured. */
  mdm?: MdmVerifier | null;
}
