/** x86-64 instruction decoding for the differ (lengths, text, constant fields). */
export { findInstructionAt, type InstructionDecoder, type X86Instruction, x86Decoder } from "./decoder.js";
