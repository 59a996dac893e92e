import { describe, expect, it } from "vitest";
import { isMayflyError } from "../../../src/errors/index.js";
import {
  commandFailed,
  decodeResponseCode,
  describeResponseCode,
  RETRYABLE_RCS,
} from "../../../src/tpm/client/index.js";

// TPM_RC decoding (Part 2 §6.6), with codes seen from swtpm/libtpms in ../shared/tpm/README.md.

describe("decodeResponseCode", () => {
  const fmt1: Array<[number, string, Record<string, number>]> = [
    [0x1df, "TPM_RC_INTEGRITY", { parameter: 1 }], // wrong-name credential (README §6.3)
    [0x2c4, "TPM_RC_VALUE", { parameter: 2 }],
    [0x184, "TPM_RC_VALUE", { handle: 1 }],
    [0x98e, "TPM_RC_AUTH_FAIL", { session: 1 }],
    [0x99d, "TPM_RC_POLICY_FAIL", { session: 1 }],
    [0xa9d, "TPM_RC_POLICY_FAIL", { session: 2 }],
    [0x28b, "TPM_RC_HANDLE", { handle: 2 }],
    [0x09d, "TPM_RC_POLICY_FAIL", {}],
    [0x0a0, "TPM_RC_TICKET", {}],
  ];
  it.each(fmt1.map(([rc, name, where]) => ({ hex: `0x${rc.toString(16)}`, rc, name, where })))(
    "format-one $hex is $name",
    ({ rc, name, where }) => {
      const d = decodeResponseCode(rc);
      expect(d.format).toBe("one");
      expect(d.name).toBe(name);
      expect(d.base).toBe(0x080 | (rc & 0x3f));
      expect({ parameter: d.parameter, handle: d.handle, session: d.session }).toEqual({
        parameter: undefined,
        handle: undefined,
        session: undefined,
        ...where,
      });
    },
  );

  const fmt0: Array<[number, string, boolean]> = [
    [0x100, "TPM_RC_INITIALIZE", false],
    [0x101, "TPM_RC_FAILURE", false],
    [0x14a, "TPM_RC_NV_UNINITIALIZED", false],
    [0x902, "TPM_RC_OBJECT_MEMORY", true],
    [0x921, "TPM_RC_LOCKOUT", true],
    [0x922, "TPM_RC_RETRY", true],
    [0x908, "TPM_RC_YIELDED", true],
    [0x90a, "TPM_RC_TESTING", true],
  ];
  it.each(fmt0.map(([rc, name, warning]) => ({ hex: `0x${rc.toString(16)}`, rc, name, warning })))(
    "format-zero $hex is $name",
    ({ rc, name, warning }) => {
      const d = decodeResponseCode(rc);
      expect(d).toMatchObject({ format: "zero", name, warning, vendor: false, base: rc });
      expect(d.parameter ?? d.handle ?? d.session).toBeUndefined();
    },
  );

  it("names unknown, vendor, TPM 1.2 and TSS-layer codes without guessing", () => {
    expect(decodeResponseCode(0x17f).name).toBe("TPM_RC_0x17f");
    expect(decodeResponseCode(0x501)).toMatchObject({ name: "TPM_RC_VENDOR_0x501", vendor: true });
    expect(decodeResponseCode(0x01e)).toMatchObject({ name: "TPM_RC_TPM12_0x1e", format: "zero" });
    expect(decodeResponseCode(0xa000a).name).toBe("TSS_RC_0xa000a");
    expect(decodeResponseCode(0x0bf).name).toBe("TPM_RC_0xbf"); // format-one E=0x3f: unassigned
  });

  it("retries exactly RETRY, YIELDED and TESTING", () => {
    expect([...RETRYABLE_RCS].sort()).toEqual([0x908, 0x90a, 0x922]);
  });

  it("commandFailed carries the decoded code", () => {
    const e = commandFailed("TPM2_ActivateCredential", 0x1df);
    expect(isMayflyError(e)).toBe(true);
    expect(e.code).toBe("tpm.command_failed");
    expect(e.field).toBe("TPM2_ActivateCredential");
    expect(e.extra).toMatchObject({ rc: 0x1df, name: "TPM_RC_INTEGRITY", parameter: 1 });
    expect(e.detail).toBe("TPM2_ActivateCredential: TPM_RC_INTEGRITY (0x1df), parameter 1");
    expect(describeResponseCode(decodeResponseCode(0x98e))).toBe("TPM_RC_AUTH_FAIL (0x98e), session 1");
  });
});
