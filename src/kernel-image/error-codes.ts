/** A kernel image and its symbols (src/kernel-image). */
export type KernelImageErrorCode =
  | "KIMAGE_EXTRACT_FAILED"
  | "KIMAGE_NOT_FOUND"
  | "KIMAGE_NOT_VMLINUX"
  | "KIMAGE_NO_SYMBOLS"
  | "KIMAGE_NO_VMLINUX"
  | "KSYMS_AMBIGUOUS"
  | "KSYMS_NOT_FOUND";

// Registered with every other area's codes: src/util/error-codes.ts.
declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    kernelImage: KernelImageErrorCode;
  }
}
