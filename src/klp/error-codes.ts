/** Livepatch module generation (src/klp). */
export type KlpErrorCode =
  | "SIGN_FAILED" // signing the module (--sign) failed
  | "KLP_BAD_CALLBACK"
  | "KLP_BAD_SYMBOL"
  | "KLP_NO_FUNCTION"
  | "KLP_NO_SYMTAB"
  | "KLP_RELOC_NOT_ALLOC";

// Registered with every other area's codes: src/util/error-codes.ts.
declare module "../util/error-codes.js" {
  interface ErrorCodeRegistry {
    klp: KlpErrorCode;
  }
}
