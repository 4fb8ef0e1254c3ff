import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import test from "node:test";
import { includersOf, scanIncludes } from "./header-users.js";

test("includersOf() follows #include names through headers, by path suffix and by the includer's dir", () => {
  const dir = mkdtempSync(join(tmpdir(), "header-users-"));
  try {
    const files: Record<string, string> = {
      "include/linux/a.h": "#define A 1\n",
      "include/linux/b.h": "#include <linux/a.h>\n",
      "kernel/uses_b.c": "#include <linux/b.h>\nint x;\n",
      "fs/x/local.h": '#include "../../include/linux/a.h"\n',
      "fs/x/y.c": '  #  include "local.h"\n',
      "fs/x/unrelated.c": "#include <linux/c.h>\n/* #include <linux/a.h> in a comment line */\n",
      "Documentation/doc.c": "#include <linux/a.h>\n",
    };
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(join(dir, dirname(f)), { recursive: true });
      writeFileSync(join(dir, f), text);
    }
    const scan = scanIncludes(dir);
    assert.equal(scan["Documentation/doc.c"], undefined, "Documentation is not scanned");
    assert.deepEqual([...includersOf(scan, "include/linux/a.h")].sort(), [
      "fs/x/local.h",
      "fs/x/y.c",
      "include/linux/b.h",
      "kernel/uses_b.c",
    ]);
    assert.deepEqual([...includersOf(scan, "include/linux/b.h")], ["kernel/uses_b.c"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
