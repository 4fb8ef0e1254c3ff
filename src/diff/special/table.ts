/**
 * The table of special sections the differ understands, by name. Adding a kind is adding a file
 * and a line here.
 */
import { altInstrAux, altInstructions, paraInstructions } from "./alternatives.js";
import { bugTable } from "./bug-table.js";
import { dyndbgDescriptors, verboseDescriptors } from "./dyndbg.js";
import { exTable, fixupCode, refcountCode } from "./ex-table.js";
import { jumpTable, staticCallSites } from "./jump-table.js";
import { orcUnwind } from "./orc-unwind.js";
import { refusedSections } from "./refused-sections.js";
import { isRuntimeConstSection, runtimeConstKind } from "./runtime-const.js";
import { mcountLoc, patchableFunctionEntries, siteLists } from "./site-lists.js";
import type { CodePieceKind, DescriptorKind, SpecialKind } from "./special-kind.js";

export const SPECIAL_KINDS: readonly SpecialKind[] = [
  bugTable,
  exTable,
  jumpTable,
  staticCallSites,
  altInstructions,
  paraInstructions,
  orcUnwind,
  mcountLoc,
  patchableFunctionEntries,
  ...siteLists,
  ...refusedSections,
];

const byName = new Map(SPECIAL_KINDS.map((k) => [k.name, k]));

/** Sections that belong to a kind without being its table: payloads and parallel arrays. */
const companions = new Map<string, SpecialKind>();
for (const k of SPECIAL_KINDS) {
  if (k.payload) companions.set(k.payload, k);
  if (k.parallel) companions.set(k.parallel.name, k);
}

/** The kind whose table is the section `name`. */
export function findSpecialKind(name: string): SpecialKind | undefined {
  const kind = byName.get(name);
  if (kind) return kind;
  return isRuntimeConstSection(name) ? runtimeConstKind(name) : undefined;
}

/** The kind a payload or parallel section (.altinstr_replacement, .orc_unwind) belongs to. */
export function findCompanionKind(name: string): SpecialKind | undefined {
  return companions.get(name);
}

/** Sections of code snippets cut per function (code-pieces.ts). */
const CODE_PIECE_KINDS: readonly CodePieceKind[] = [altInstrAux, fixupCode, refcountCode];

/** The code-piece kind of the section `name`. */
export function findCodePieceKind(name: string): CodePieceKind | undefined {
  return CODE_PIECE_KINDS.find((k) => k.name === name);
}

/** Tables of descriptors that code refers to, copied per reference (descriptor-copier.ts). */
const DESCRIPTOR_KINDS: readonly DescriptorKind[] = [dyndbgDescriptors, verboseDescriptors];

/** The descriptor kind of the section `name`. */
export function findDescriptorKind(name: string): DescriptorKind | undefined {
  return DESCRIPTOR_KINDS.find((k) => k.name === name);
}
