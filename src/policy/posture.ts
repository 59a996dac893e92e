import type { ErrorCode } from "../errors/index.js";
import type { Device, Owner } from "../store/types.js";

/** A profile's device posture rules (issue 8); the profile schema holds the same keys. */
export interface PostureRules {
  /** The device must be enrolled in the MDM (managed). */
  requireManaged: boolean;
  /** The MDM must have called the device compliant. */
  requireCompliant: boolean;
  /** The device's assigned user must be the agent's owner. */
  requireAssignedOwner: boolean;
  /** The MDM's last posture statement must be younger than this (ms); null: any age. */
  maxPostureAge: number | null;
}

export type PostureDenial = { allow: false; code: ErrorCode; detail: string };

/**
 * Is `device` assigned to `owner`? For a device the MDM manages (or has named a user for),
 * the MDM's assigned user decides, and none means nobody: the owner's IdP subject or id
 * exactly, or their email address ignoring case (MDMs name users by UPN or email as often
 * as by directory id). For any other device, an administrator's assignment
 * (assignedOwnerId) does.
 */
export function deviceAssignedTo(device: Device, owner: Owner): boolean {
  const user = device.assignedUser ?? null;
  if (device.managed || user !== null) {
    if (user === null) return false;
    if (user === owner.subject || user === owner.id) return true;
    return owner.email !== null && user.toLowerCase() === owner.email.toLowerCase();
  }
  return device.assignedOwnerId !== null && device.assignedOwnerId === owner.id;
}

/**
 * The device posture a profile asks for, as a pure function of the facts read in the
 * issuing transaction. Most fundamental first: a device the MDM does not manage cannot be
 * vouched for at all; a non-compliant one can become compliant; an assignment can change;
 * a stale statement is refreshed by the MDM's next check-in.
 */
export function checkPosture(
  rules: PostureRules,
  device: Device,
  owner: Owner,
  now: number,
): PostureDenial | null {
  if (rules.requireManaged && !device.managed) {
    return deny("device.not_managed", `device ${device.id} is not enrolled in the device-management system`);
  }
  if (rules.requireCompliant && !device.compliant) {
    const why = device.complianceReason ? `: ${device.complianceReason}` : "";
    return deny("device.non_compliant", `device ${device.id} is not compliant${why}`);
  }
  if (rules.requireAssignedOwner && !deviceAssignedTo(device, owner)) {
    const to = device.assignedUser ?? device.assignedOwnerId;
    return deny(
      "device.not_assigned",
      `device ${device.id} is assigned to ${to === null ? "nobody" : JSON.stringify(to)}, not to owner ${owner.id}`,
    );
  }
  if (rules.maxPostureAge !== null) {
    const at = device.postureAt ?? null;
    if (at === null) {
      return deny(
        "device.posture_stale",
        `the device-management system never reported on device ${device.id}`,
      );
    }
    if (at + rules.maxPostureAge <= now) {
      return deny(
        "device.posture_stale",
        `device ${device.id}'s posture was last reported at ${new Date(at).toISOString()}, ` +
          `more than ${Math.round(rules.maxPostureAge / 1000)} s ago`,
      );
    }
  }
  return null;
}

function deny(code: ErrorCode, detail: string): PostureDenial {
  return { allow: false, code, detail };
}
