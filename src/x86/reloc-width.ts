/** Bytes a relocation of this type writes (x86-64 psABI); 4 for the 32-bit kinds and any other. */
export function relocWidth(type: number): number {
  switch (type) {
    case 1: // R_X86_64_64
    case 24: // R_X86_64_PC64
    case 25: // R_X86_64_GOTOFF64
    case 26: // R_X86_64_GOTPC64
    case 27: // R_X86_64_GOTPCREL64 (and GOT64 = 27 in some numberings)
      return 8;
    case 12: // R_X86_64_16
    case 13: // R_X86_64_PC16
      return 2;
    case 14: // R_X86_64_8
    case 15: // R_X86_64_PC8
      return 1;
    case 0: // R_X86_64_NONE
      return 0;
    default:
      return 4;
  }
}
