/**
 * The maintainer scripts of a kernel's patch package (kpatch package; the model is in
 * patch-package.ts: one package per kernel release, each version an atomic-replace module).
 * dpkg runs them as root. Each acts live only when `uname -r` is its kernel, and only on its
 * own module: one loaded under that name whose build id (/sys/module/<name>/notes) is the one
 * it ships, or the one the version before it recorded (RECORD_DIR: "<module> <build id>").
 *
 *   postinst configure    kpatch install -k KVER the module; on KVER, kpatch load it unless it
 *                         is loaded already (replacing the earlier level live; another build
 *                         under the same name is unloaded first, said so, as a name loads
 *                         once). A load that fails undoes the install and fails: nothing of
 *                         this version is left for boot. Then the earlier level's module, when
 *                         named otherwise, is unloaded (replaced, it lingers) and uninstalled.
 *   postinst abort-*      dpkg backs out a removal or upgrade: the configured version is put
 *                         back live when it is installed and not loaded (prerm undid nothing
 *                         else: prerm upgrade changes nothing).
 *   prerm remove          unloads and uninstalls this version's module and the recorded one
 *                         (an upgrade that never configured leaves the older one live: it goes
 *                         too); a same-named module that is not theirs is left alone, said so.
 *   prerm upgrade, failed-upgrade   nothing: the old level stays live until the new replaces it.
 *   postrm remove/purge   the recorded level again (dpkg runs no prerm for a version only
 *                         unpacked), then forgets the record.
 *
 * Every value written into a script was checked before (a module name: letters, digits, '_';
 * a kernel release: letters, digits and . _ + ~ -; a build id: hex): none needs quoting
 * beyond '...'.
 */

/**
 * Where the packages record the module of their configured version. The directories can be
 * moved by the environment as kpatch's own KPATCH_LIB_DIR moves its modules (the unit tests
 * run the scripts against temporary directories with a stub kpatch).
 */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
const RECORD_DIR = "${KPATCH_PACKAGES_DIR:-/var/lib/kpatch-ts/packages}";
/** Where kpatch install keeps modules (the default of src/manage/state-dir.ts). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
const KPATCH_LIB = "${KPATCH_LIB_DIR:-/var/lib/kpatch}";
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
const SYS_MODULE = "${KPATCH_SYS_MODULE:-/sys/module}";

export interface PatchScriptValues {
  package: string;
  kernelRelease: string;
  /** The module name, normalised (the name under /sys/kernel/livepatch and /proc/modules). */
  patch: string;
  /** The module's path as the package installs it. */
  module: string;
  /** Its GNU build id, hex: what /sys/module/<patch>/notes shows past the note's header when it is loaded. */
  buildId: string;
}

function header(v: PatchScriptValues, script: string): string {
  return `#!/bin/sh
# ${script} of ${v.package}: live patch ${v.patch} for Linux ${v.kernelRelease}
# (written by 'kpatch package', kpatch-ts)
set -e
KVER='${v.kernelRelease}'
PATCH='${v.patch}'
# DPKG_ROOT: set by dpkg --root with --force-script-chrootless (empty otherwise).
MODULE="$DPKG_ROOT"'${v.module}'
BUILD_ID='${v.buildId}'
RECORD="${RECORD_DIR}/${v.package}"

running() {
  [ "$(uname -r)" = "$KVER" ]
}
# The build id of loaded module $1 (hex: its GNU note past the 16 bytes of header and "GNU"),
# "unknown" when it shows none, empty when not loaded.
loaded_id() {
  if [ -r "${SYS_MODULE}/$1/notes/.note.gnu.build-id" ]; then
    od -An -v -tx1 "${SYS_MODULE}/$1/notes/.note.gnu.build-id" | tr -d ' \\n' | cut -c33-
  elif [ -d "${SYS_MODULE}/$1" ]; then
    echo unknown
  fi
}
installed() {
  [ -e "${KPATCH_LIB}/$KVER/$1.ko" ]
}
# Unloads module $1 when this machine runs KVER and the loaded $1 has build id $2.
unload_own() {
  if running && [ -n "$2" ] && [ "$(loaded_id "$1")" = "$2" ]; then kpatch unload "$1"; fi
}
# OLD, OLD_ID: the module of the configured version, as recorded (checked).
read_record() {
  OLD=
  OLD_ID=
  if [ -r "$RECORD" ]; then read -r OLD OLD_ID < "$RECORD" || true; fi
  case "$OLD" in *[!A-Za-z0-9_]*) OLD= ;; esac
  case "$OLD_ID" in *[!0-9a-f]*) OLD_ID= ;; esac
}
`;
}

export function postinst(v: PatchScriptValues): string {
  return `${header(v, "postinst")}
# This version's module, live on KVER; on failure its install is undone and it fails.
load_own() {
  NOW=$(loaded_id "$PATCH")
  [ "$NOW" = "$BUILD_ID" ] && return 0
  if [ -n "$NOW" ]; then
    echo "$PATCH: another build of $PATCH is loaded; unloading it to load this one (a module name loads once: a new module name per version replaces without a gap)" >&2
    if ! kpatch unload "$PATCH"; then
      kpatch uninstall -k "$KVER" "$PATCH"
      exit 1
    fi
  fi
  if ! kpatch load "$MODULE"; then
    kpatch uninstall -k "$KVER" "$PATCH"
    echo "$PATCH: not loaded, and not installed for boot either" >&2
    exit 1
  fi
}

case "$1" in
  configure)
    read_record
    kpatch install -k "$KVER" "$MODULE"
    # Live only on a machine running that kernel; elsewhere kpatch.service loads it at boot.
    if running; then load_own; fi
    if [ -n "$OLD" ] && [ "$OLD" != "$PATCH" ]; then
      unload_own "$OLD" "$OLD_ID"
      if installed "$OLD"; then kpatch uninstall -k "$KVER" "$OLD"; fi
    fi
    mkdir -p "${RECORD_DIR}"
    echo "$PATCH $BUILD_ID" > "$RECORD.new"
    mv "$RECORD.new" "$RECORD"
    ;;
  abort-upgrade | abort-remove | abort-deconfigure)
    if running && installed "$PATCH" && [ -z "$(loaded_id "$PATCH")" ]; then kpatch load "$MODULE"; fi
    ;;
  *)
    echo "postinst called with unknown argument '$1'" >&2
    exit 1
    ;;
esac

exit 0
`;
}

export function prerm(v: PatchScriptValues): string {
  return `${header(v, "prerm")}
case "$1" in
  remove | deconfigure)
    read_record
    unload_own "$PATCH" "$BUILD_ID"
    if [ -n "$(loaded_id "$PATCH")" ] && running && [ "$(loaded_id "$PATCH")" != "$BUILD_ID" ]; then
      echo "$PATCH: the loaded $PATCH is not this package's (another build): left loaded" >&2
    fi
    if installed "$PATCH"; then
      if cmp -s "${KPATCH_LIB}/$KVER/$PATCH.ko" "$MODULE"; then
        kpatch uninstall -k "$KVER" "$PATCH"
      else
        echo "$PATCH: the module installed for $KVER is not this package's: left installed" >&2
      fi
    fi
    if [ -n "$OLD" ] && [ "$OLD" != "$PATCH" ]; then
      unload_own "$OLD" "$OLD_ID"
      if installed "$OLD"; then kpatch uninstall -k "$KVER" "$OLD"; fi
    fi
    ;;
  upgrade | failed-upgrade) ;;
  *)
    echo "prerm called with unknown argument '$1'" >&2
    exit 1
    ;;
esac

exit 0
`;
}

export function postrm(v: PatchScriptValues): string {
  return `${header(v, "postrm")}
case "$1" in
  remove | purge)
    # dpkg runs no prerm for a version only unpacked: the level recorded before it goes here.
    read_record
    if [ -n "$OLD" ] && [ "$OLD" != "$PATCH" ]; then
      unload_own "$OLD" "$OLD_ID"
      if installed "$OLD"; then kpatch uninstall -k "$KVER" "$OLD"; fi
    fi
    rm -f "$RECORD"
    ;;
  upgrade | failed-upgrade | abort-install | abort-upgrade | disappear) ;;
  *)
    echo "postrm called with unknown argument '$1'" >&2
    exit 1
    ;;
esac

exit 0
`;
}
