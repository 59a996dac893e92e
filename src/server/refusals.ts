import { recordDenial, wasRecorded } from "../authority/deny.js";
import type { MayflyError } from "../errors/index.js";
import type { ServerContext } from "./context.js";

/** Longer paths are cut here in the event (an URL can be kilobytes; the head says enough). */
const PATH_CHARS = 256;

/**
 * Every refusal the JSON API answers lands in the audit log, once. authority/ records its
 * own denials (recordDenial and the like, which mark the error); what is refused before any
 * authority function decides (a body too large or not JSON, another media type, an agent id
 * with characters ids never have, no such route, an admin action that does not exist) is
 * recorded here as "request.refused", with no actor: the HTTP layer has not learnt who
 * asked. Awaited before the answer, as authority/'s denials are. If the store cannot take
 * the event, the refusal is still answered (refusing is already the closed side) and the
 * failure logged.
 */
export async function recordRefusal(
  ctx: Pick<ServerContext, "store" | "clock" | "log">,
  cause: unknown,
  err: MayflyError,
  request: { method: string; path: string },
): Promise<void> {
  if (wasRecorded(cause) || wasRecorded(err)) return;
  const path = request.path.length > PATH_CHARS ? `${request.path.slice(0, PATH_CHARS)}…` : request.path;
  try {
    await recordDenial(ctx.store, ctx.clock, err, {
      type: "request.refused",
      actor: null,
      subject: null,
      data: { method: request.method, path },
    });
  } catch (e) {
    ctx.log.error({ err: e, code: err.code, path }, "could not record a refused request in the audit log");
  }
}
