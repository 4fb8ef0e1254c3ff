import assert from "node:assert/strict";
import test from "node:test";
import { int3Explanation, int3Site } from "./int3.js";

const OOPS = [
  "[   41.2] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI",
  "[   41.2] CPU: 1 UID: 0 PID: 77 Comm: sh Tainted: G            K    6.12.115 #1",
  "[   41.2] RIP: 0010:vfree+0x6c/0x1a0",
].join("\n");

test("int3Site() names the int3 byte (RIP minus one); without a vmlinux the kind stays unknown", async () => {
  const s = await int3Site(OOPS, "/nonexistent/arch/x86/boot/bzImage");
  assert.deepEqual(s, { site: "vfree+0x6b", kind: "unknown" });
  assert.equal(await int3Site("Oops: general protection fault", "/x"), undefined);
});

test("int3Explanation() names the site, its kind and the TCG mode, and points to the explanation", () => {
  const text = int3Explanation(
    {
      site: "vfree+0x6b",
      address: 0xffffffff811e9f4bn,
      instruction: "e8 b0 01 44 00 call <__SCT__cond_resched>",
      kind: "static call",
    },
    "tcg",
    2,
  );
  assert.match(
    text,
    /^int3 at vfree\+0x6b \(0xffffffff811e9f4b: .*__SCT__cond_resched.*\): a static-call site/,
  );
  assert.match(text, /accelerator tcg \(QEMU's default thread mode, multi here\), 2 vCPU\(s\)/);
  assert.match(text, /src\/lab\/int3\.ts/);
  assert.match(
    int3Explanation({ site: "f+0x4", kind: "ftrace" }, "tcg,thread=single", 2),
    /an ftrace site: .*; accelerator tcg,thread=single, 2 vCPU/,
  );
});

test("int3Site() reads the byte memory held at the site from the oops's Code: line; the explanation says what it means", async () => {
  // Seen under tcg,thread=multi (test/kpatch-stress): a finished `call` (e8) where the vCPU trapped.
  const oops = [
    "[  136.246316] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI",
    "[  136.246856] RIP: 0010:__dentry_kill+0xd3/0x200",
    "[  136.247099] Code: 7f 0f 85 a8 00 00 00 e8 <69> 28 e8 ff 48 8b 6b 18",
    "[  136.248076] Code: 0f 05 <3d> 00 f0 ff ff",
  ].join("\n");
  const s = await int3Site(oops, "/nonexistent/arch/x86/boot/bzImage");
  assert.deepEqual(s, { site: "__dentry_kill+0xd2", byteAtSite: 0xe8, kind: "unknown" });
  assert.match(
    int3Explanation(s!, "tcg,thread=multi", 2),
    /Code: line shows e8 at the site, not the int3: the kernel had finished/,
  );
  const pending = await int3Site(oops.replace("e8 <69>", "cc <69>"), "/x/bzImage");
  assert.equal(pending?.byteAtSite, 0xcc);
  assert.match(int3Explanation(pending!, "tcg,thread=multi", 2), /still shows the int3/);
});
