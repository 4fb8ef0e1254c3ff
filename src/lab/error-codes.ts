/** The lab and its QEMU guest (src/lab). */
export type LabErrorCode =
  | "LAB_ACCEL"
  | "LAB_BUSYBOX"
  | "LAB_CONFIG"
  | "LAB_FILE"
  | "LAB_NODE"
  | "LAB_NOT_DEBIAN"
  | "LAB_NOT_ROOT"
  | "LAB_NOT_SET_UP"
  | "LAB_PACKAGES_MISSING"
  | "LAB_SOURCE"
  | "GUEST_SETUP"
  | "GUEST_TIMEOUT"
  | "GUEST_NO_RESULT"
  | "GUEST_PANIC"
  | "GUEST_OOPS"
  | "GUEST_CALL_TRACE";

// Registered with every other area's codes: src/util/error-codes.ts.
declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    lab: LabErrorCode;
  }
}
