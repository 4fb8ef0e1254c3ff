/**
 * A module's appended signature, as the kernel's module_sig_check() finds it
 * (include/linux/module_signature.h, kernel/module/signing.c): the file ends with the marker
 * "~Module signature appended~\n", before it a 12-byte struct module_signature (algo, hash,
 * id_type, signer_len, key_id_len, 3 pad bytes, sig_len big-endian), before that the signature
 * (PKCS#7 for id_type 2, the only type the kernel accepts). And whether the running kernel
 * enforces signatures (/sys/module/module/parameters/sig_enforce: CONFIG_MODULE_SIG_FORCE or
 * module.sig_enforce=1).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { KERNEL_PATHS, type KernelPaths } from "./kernel-paths.js";

const MARKER = Buffer.from("~Module signature appended~\n");
const SIG_INFO_SIZE = 12;
const PKEY_ID_PKCS7 = 2;

export interface ModuleSignature {
  /** PKCS#7 (the kernel's only accepted kind), or the raw id_type. */
  kind: "PKCS#7" | `id_type ${number}`;
  /** Bytes of the signature itself. */
  length: number;
}

/** The signature appended to a module file, or undefined when it carries none (or a broken one). */
export function moduleSignature(bytes: Uint8Array): ModuleSignature | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MARKER.length + SIG_INFO_SIZE) return undefined;
  if (!buf.subarray(buf.length - MARKER.length).equals(MARKER)) return undefined;
  const info = buf.length - MARKER.length - SIG_INFO_SIZE;
  const idType = buf[info + 2]!;
  const length = buf.readUInt32BE(info + 8);
  if (length === 0 || length > info) return undefined;
  return { kind: idType === PKEY_ID_PKCS7 ? "PKCS#7" : `id_type ${idType}`, length };
}

/** Whether the running kernel refuses modules without a valid signature. */
export function signaturesEnforced(paths: KernelPaths = KERNEL_PATHS): boolean {
  try {
    return readFileSync(join(paths.sysModule, "module", "parameters", "sig_enforce"), "utf8").trim() === "Y";
  } catch {
    return false;
  }
}
