#!/usr/bin/env node
// Lists the value exports (functions, classes, constants) of src/ that no other module imports
// (src, test or bench), and fails when there is one: an export nobody uses is dead code or a
// private helper that says it is public. Types are left alone: they describe the shape of an
// exported function's arguments and results. Biome has no such rule; `npm run lint` runs this.
// Re-exports (index.ts) count as uses only when something imports the re-exported name.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..");
const files = ["src", "test", "bench"].flatMap((d) => walk(join(root, d)));

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return walk(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

/** "./x.js" from `from` → the .ts file it names, or undefined (a package). */
function resolveSpec(from, spec) {
  if (!spec.startsWith(".")) return undefined;
  return resolve(dirname(from), spec).replace(/\.js$/, ".ts");
}

const exportsOf = new Map(); // file → Set of exported names
const reexports = new Map(); // file → [{ from, name, as }] ("*" for export *)
const used = new Map(); // file → Set of names imported by other modules ("*" = all)
const use = (file, name) => {
  if (!used.has(file)) used.set(file, new Set());
  used.get(file).add(name);
};

for (const file of files) {
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  const names = new Set();
  const re = [];
  const isExported = (n) => n.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st)) {
      const target = resolveSpec(file, st.moduleSpecifier.text);
      const clause = st.importClause;
      if (!target || !clause) continue;
      if (clause.name) use(target, "default");
      const nb = clause.namedBindings;
      if (nb && ts.isNamespaceImport(nb)) use(target, "*");
      else if (nb) for (const el of nb.elements) use(target, (el.propertyName ?? el.name).text);
    } else if (ts.isExportDeclaration(st)) {
      const target = st.moduleSpecifier ? resolveSpec(file, st.moduleSpecifier.text) : undefined;
      if (!st.exportClause) {
        if (target) re.push({ from: target, name: "*", as: "*" });
      } else if (ts.isNamedExports(st.exportClause)) {
        if (st.isTypeOnly) continue;
        for (const el of st.exportClause.elements) {
          if (el.isTypeOnly) continue;
          const as = el.name.text;
          names.add(as);
          if (target) re.push({ from: target, name: (el.propertyName ?? el.name).text, as });
        }
      }
    } else if (isExported(st)) {
      if (ts.isVariableStatement(st)) {
        for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) names.add(d.name.text);
      } else if (ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) {
        // a type: see above
      } else if (st.name) names.add(st.name.text);
    }
  }
  // import("./x.js"): the whole module is used (its names are destructured at run time).
  const visit = (n) => {
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = n.arguments[0];
      const target = arg && ts.isStringLiteral(arg) ? resolveSpec(file, arg.text) : undefined;
      if (target) use(target, "*");
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  exportsOf.set(file, names);
  reexports.set(file, re);
}

// A name used through a re-export is a use of the original (to a fixed point).
for (let changed = true; changed; ) {
  changed = false;
  for (const [file, re] of reexports) {
    const u = used.get(file) ?? new Set();
    for (const r of re) {
      const wanted = r.as === "*" ? [...u] : u.has(r.as) || u.has("*") ? [r.name] : [];
      for (const name of wanted) {
        const before = used.get(r.from)?.size ?? 0;
        if (!used.get(r.from)?.has(name)) use(r.from, name);
        if ((used.get(r.from)?.size ?? 0) !== before) changed = true;
      }
    }
  }
}

const unused = [];
for (const [file, names] of exportsOf) {
  if (!file.startsWith(join(root, "src"))) continue;
  const u = used.get(file) ?? new Set();
  if (u.has("*")) continue;
  for (const name of names) if (!u.has(name)) unused.push(`${relative(root, file)}: ${name}`);
}
if (unused.length) {
  process.stderr.write(`Exports no other module imports (drop the export, or the code):\n  ${unused.sort().join("\n  ")}\n`);
  process.exit(1);
}
