/**
 * A stock distribution kernel as kpatch-build's or the lab's target: its packages, version,
 * config and object index (src/debian, src/kpatch-build/distro*, src/lab/distro*).
 */
export type DistroErrorCode =
  | "DISTRO_BAD_RELEASE"
  | "DISTRO_CONFIG_CHANGED"
  | "DISTRO_CONFIG_MISMATCH"
  | "DISTRO_HEADERS"
  | "DISTRO_IMAGE"
  | "DISTRO_INDEX"
  | "DISTRO_MODULE"
  | "DISTRO_NO_IMAGE"
  | "DISTRO_NO_PACKAGE"
  | "DISTRO_NO_SOURCE"
  | "DISTRO_VERSION_MISMATCH";

/** Debian packages (src/debian). */
export type DebianErrorCode =
  | "DEBIAN_BAD_NAME"
  | "DEBIAN_DOWNLOAD_FAILED"
  | "DEBIAN_PACKAGE_FAILED"
  | "DEBIAN_WRONG_PACKAGE";

// Registered with every other area's codes: src/util/error-codes.ts.
declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    distro: DistroErrorCode;
    debian: DebianErrorCode;
  }
}
