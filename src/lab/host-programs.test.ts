import assert from "node:assert/strict";
import test from "node:test";
import { hostProgram, hostProgramsInGuest } from "./host-programs.js";

test("hostProgram() names bash's loader and its libraries where the loader finds them", async () => {
  const bash = await hostProgram("/usr/bin/bash");
  assert.match(bash.loader?.name ?? "", /^\/lib64\/ld-linux-x86-64\.so\.2$/);
  const libc = bash.libraries.find((l) => l.name === "libc.so.6");
  assert.ok(libc, "bash links libc");
  assert.match(libc.found, /^\/.*\/libc\.so\.6$/);
});

test("hostProgramsInGuest() places each file once and replaces a busybox link before writing", async () => {
  const { files, setup } = await hostProgramsInGuest([
    { host: "/usr/bin/bash", guest: "/bin/bash" },
    { host: "/usr/bin/stat", guest: "/bin/stat" },
    { host: "/usr/bin/kmod", guest: "/usr/local/bin/kmod", links: ["insmod", "rmmod"] },
  ]);
  const names = files.map((f) => f.name);
  assert.equal(new Set(names).size, names.length);
  assert.equal(names.filter((n) => n?.endsWith("/libc.so.6")).length, 1, "libc once for three programs");
  assert.ok(names.includes("hostfs/lib64/ld-linux-x86-64.so.2"));
  // the removal of /bin/stat (a symlink to busybox in the guest) comes before the move onto it
  const rm = setup.indexOf("rm -f /bin/stat");
  assert.ok(rm >= 0 && rm < setup.indexOf("mv /lab/files/hostfs/bin/stat /bin/stat"));
  assert.match(setup, /ln -s \/usr\/local\/bin\/kmod \/usr\/local\/bin\/insmod/);
});

test("hostProgramsInGuest() refuses two programs for one guest path", async () => {
  await assert.rejects(
    hostProgramsInGuest([
      { host: "/usr/bin/bash", guest: "/bin/sh" },
      { host: "/usr/bin/stat", guest: "/bin/sh" },
    ]),
    /Cannot put both .*bash and .*stat at \/bin\/sh/,
  );
});
