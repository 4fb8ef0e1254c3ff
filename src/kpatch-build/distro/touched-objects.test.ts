import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "node:test";
import type { ObjectIndex } from "./distro-objects.js";
import { notBuiltProof, unsureDirs } from "./touched-objects.js";

test("unsureDirs() keeps the failures no deeper one explains: a failed dir, or a failed file's dir", () => {
  const failed = [".", "__sub-make", "certs", "certs/x509_certificate_list", "drivers", "drivers/foo"];
  const dirs = new Set(["certs", "drivers", "drivers/foo"]);
  assert.deepEqual(
    unsureDirs(failed, (p) => dirs.has(p)),
    ["certs", "drivers/foo"],
  );
  assert.deepEqual(
    unsureDirs([".", "__sub-make"], () => true),
    [],
  );
});

test("notBuiltProof() proves from the index, or cannot tell (new file, a failed dry run there)", () => {
  const src = mkdtempSync(join(tmpdir(), "touched-objects-"));
  try {
    for (const f of ["drivers/soc/arm64only.c", "certs/system_keyring.c"]) {
      mkdirSync(join(src, f, ".."), { recursive: true });
      writeFileSync(join(src, f), "");
    }
    const index: ObjectIndex = {
      objects: [{ path: "kernel/sys.o", source: "kernel/sys.c", target: "vmlinux" }],
      failed: ["certs/x509_certificate_list", "certs"],
    };
    assert.match(
      notBuiltProof("drivers/soc/arm64only.c", index, [], src),
      /^not built by this config: kbuild compiles none of the config's 1 objects from it, and none of their sources #includes it$/,
    );
    assert.match(
      notBuiltProof("drivers/soc/arm64only.c", index, [index.objects[0]!], src),
      /records of the 1 objects whose source may #include it \(kernel\/sys\.o\) do not list it/,
    );
    const cannotTell = (file: string, why: RegExp) =>
      assert.throws(
        () => notBuiltProof(file, index, [], src),
        (e: Error & { code?: string }) =>
          e.code === "DISTRO_INDEX" && /^Cannot tell/.test(e.message) && why.test(e.message),
      );
    cannotTell("certs/system_keyring.c", /dry run over this config failed in certs\//);
    cannotTell("drivers/soc/new.c", /not in the unpatched tree/);
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
});
