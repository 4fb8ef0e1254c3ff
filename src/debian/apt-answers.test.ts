import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { after } from "node:test";
import { cachedAptAnswer } from "./apt-answers.js";

const root = mkdtempSync(join(tmpdir(), "kpatch-apt-answers-"));
after(() => rmSync(root, { recursive: true, force: true }));
process.env["KPATCH_TS_CACHE"] = join(root, "cache");

/** A private apt state's files (its lists and dpkg status) in a directory of their own. */
function fixture(): { lists: string; status: string; options: string[] } {
  const dir = mkdtempSync(join(root, "state-"));
  const lists = join(dir, "lists");
  mkdirSync(lists);
  writeFileSync(join(lists, "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"), "a\n");
  const status = join(dir, "status");
  writeFileSync(status, "");
  return { lists, status, options: ["-o", `Dir::State::Lists=${lists}`] };
}

test("cachedAptAnswer() asks once while the inputs are unchanged, and again after each change", async () => {
  const f = fixture();
  const apt = { options: f.options, inputs: [f.lists, f.status] };
  let asked = 0;
  const ask = async () => `1.${++asked}`;
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.1");
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.1", "stored");
  assert.equal(asked, 1);

  // apt-get update replaces a list (new inode, same size).
  const list = join(f.lists, "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages");
  writeFileSync(`${list}.new`, "b\n");
  renameSync(`${list}.new`, list);
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.2", "a list changed");
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.2");

  // A new list (a source added), then dpkg's status rewritten in place.
  writeFileSync(join(f.lists, "security.debian.org_dists_bookworm-security_main_binary-amd64_Packages"), "");
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.3", "a list added");
  writeFileSync(f.status, "Package: linux-source-6.12\n");
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.4", "dpkg's status changed");
  rmSync(f.status);
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.5", "dpkg's status removed");
  assert.equal(asked, 5);

  // Other queries and other options are answered apart; "none" (null) and lists are answers too.
  assert.equal(await cachedAptAnswer(apt, "installed linux-source-6.12", async () => null), null);
  assert.equal(
    await cachedAptAnswer(apt, "installed linux-source-6.12", async () => "wrong"),
    null,
    "a stored null",
  );
  const other = { ...apt, options: [...f.options, "-o", "Dir::Etc::Preferences=/dev/null"] };
  assert.deepEqual(await cachedAptAnswer(other, "madison linux-source-6.12", async () => ["1", "2"]), [
    "1",
    "2",
  ]);
  assert.equal(
    await cachedAptAnswer(other, "policy linux-source-6.12", ask),
    "1.6",
    "not the other options'",
  );
  assert.equal(await cachedAptAnswer(apt, "policy linux-source-6.12", ask), "1.5");
});

test("cachedAptAnswer() keeps no answer when the inputs change while apt runs", async () => {
  const f = fixture();
  const apt = { options: f.options, inputs: [f.lists, f.status] };
  let asked = 0;
  const racing = async () => {
    asked++;
    writeFileSync(join(f.lists, `new-${asked}`), "");
    return "old";
  };
  assert.equal(await cachedAptAnswer(apt, "policy linux-image-6.12.117+deb12-amd64", racing), "old");
  assert.equal(
    await cachedAptAnswer(apt, "policy linux-image-6.12.117+deb12-amd64", async () => "new"),
    "new",
  );
  assert.equal(asked, 1);
});
