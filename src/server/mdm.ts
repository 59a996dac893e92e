import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import { type JwksLoader, MdmVerifier } from "../devices/mdm-verifier.js";
import { isMayflyError, MayflyError } from "../errors/index.js";
import { httpsJsonFetcher } from "../owners/fetch-json.js";
import type { Clock } from "../runtime/clock.js";

/**
 * The MDM side of the composition root: the hook's verifier over the configured JWKS
 * (null when neither mdm.jwksFile nor mdm.jwksUrl is set). A JWKS file is read now, and a
 * file without a usable key stops the start (config.invalid); a URL is fetched at the
 * first event, so a CA does not wait for the MDM to start.
 */
export async function mdmServices(
  config: Config,
  deps: { clock: Clock; log: Logger },
): Promise<MdmVerifier | null> {
  const m = config.mdm;
  if (m.jwksFile === null && m.jwksUrl === null) {
    deps.log.info("mdm.jwksFile and mdm.jwksUrl are not set: the MDM hook is disabled");
    return null;
  }
  let loadJwks: JwksLoader;
  let source: string;
  if (m.jwksFile !== null) {
    const path = m.jwksFile;
    source = `file ${path}`;
    loadJwks = async () => {
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (e) {
        throw new MayflyError("mdm.unavailable", `cannot read mdm.jwksFile ${path}`, { cause: e });
      }
      try {
        return JSON.parse(text) as unknown;
      } catch (e) {
        throw new MayflyError("mdm.unavailable", `mdm.jwksFile ${path} is not JSON`, { cause: e });
      }
    };
  } else {
    const url = m.jwksUrl!;
    source = url;
    let ca: string | null = null;
    if (m.caFile) {
      try {
        ca = await readFile(m.caFile, "utf8");
      } catch (e) {
        throw new MayflyError("config.invalid", `cannot read mdm.caFile ${m.caFile}`, {
          cause: e,
          field: "mdm.caFile",
        });
      }
    }
    const fetch = httpsJsonFetcher({ ca, timeoutMs: m.requestTimeout, errorCode: "mdm.unavailable" });
    loadJwks = () => fetch(url);
  }
  const verifier = new MdmVerifier({
    algorithms: m.algorithms,
    issuer: m.issuer,
    audience: m.audience,
    iatMaxAgeMs: m.iatMaxAge,
    clockSkewMs: m.clockSkew,
    jwksCacheTtlMs: m.jwksCacheTtl,
    refetchCooldownMs: m.jwksRefetchCooldown,
    clock: deps.clock,
    loadJwks,
    source,
  });
  if (m.jwksFile !== null) {
    try {
      const keys = await verifier.load();
      deps.log.info({ jwksFile: m.jwksFile, keys, name: m.name }, "MDM hook enabled at /v1/hooks/mdm");
    } catch (e) {
      throw new MayflyError("config.invalid", `mdm.jwksFile: ${isMayflyError(e) ? e.detail : String(e)}`, {
        cause: e,
        field: "mdm.jwksFile",
      });
    }
  } else {
    deps.log.info({ jwksUrl: m.jwksUrl, name: m.name }, "MDM hook enabled at /v1/hooks/mdm");
  }
  return verifier;
}
