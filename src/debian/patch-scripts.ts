/**
 * The maintainer scripts of a live patch package (kpatch package). dpkg runs them as root:
 *
 *   postinst configure   kpatch install -k KVER the module; when `uname -r` is KVER and the
 *                        module is not loaded, kpatch load it. An earlier version of the same
 *                        package (its module name recorded in RECORD_DIR) is then unloaded
 *                        live (an atomic-replace patch has already replaced it; the module
 *                        lingers) and uninstalled, so one version of the patch stays.
 *   prerm remove         kpatch unload it when loaded, kpatch uninstall it when installed.
 *   prerm upgrade        nothing: the old version stays live until the new one replaces it.
 *   postrm remove/purge  forgets the record.
 *
 * Every value written into a script was checked before (a module name: letters, digits, '_';
 * a kernel release: letters, digits and . _ + ~ -): none needs quoting beyond '...'.
 */

/**
 * Where the packages record which module name their installed version has. Both directories
 * can be moved by the environment as kpatch's own KPATCH_LIB_DIR moves its modules (the tests
 * run the scripts against a temporary directory with a stub kpatch).
 */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
const RECORD_DIR = "${KPATCH_PACKAGES_DIR:-/var/lib/kpatch-ts/packages}";
/** Where kpatch install keeps modules (the default of src/manage/state-dir.ts). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
const KPATCH_LIB = "${KPATCH_LIB_DIR:-/var/lib/kpatch}";

export interface PatchScriptValues {
  package: string;
  kernelRelease: string;
  /** The module name, normalised (the name under /sys/kernel/livepatch and /proc/modules). */
  patch: string;
  /** The module's path as the package installs it. */
  module: string;
}

function header(v: PatchScriptValues, script: string): string {
  return `#!/bin/sh
# ${script} of ${v.package}: live patch ${v.patch} for Linux ${v.kernelRelease}
# (written by 'kpatch package', kpatch-ts)
set -e
KVER='${v.kernelRelease}'
PATCH='${v.patch}'
MODULE='${v.module}'
RECORD="${RECORD_DIR}/${v.package}"

loaded() {
  grep -q "^$1 " /proc/modules 2>/dev/null
}
installed() {
  [ -e "${KPATCH_LIB}/$KVER/$1.ko" ]
}
`;
}

export function postinst(v: PatchScriptValues): string {
  return `${header(v, "postinst")}
case "$1" in
  configure)
    OLD=
    [ -r "$RECORD" ] && OLD=$(cat "$RECORD")
    case "$OLD" in *[!A-Za-z0-9_]*) OLD= ;; esac
    kpatch install -k "$KVER" "$MODULE"
    # Live only on a machine running that kernel; elsewhere kpatch.service loads it at boot.
    if [ "$(uname -r)" = "$KVER" ] && ! loaded "$PATCH"; then
      kpatch load "$MODULE"
    fi
    if [ -n "$OLD" ] && [ "$OLD" != "$PATCH" ]; then
      if loaded "$OLD"; then kpatch unload "$OLD"; fi
      if installed "$OLD"; then kpatch uninstall -k "$KVER" "$OLD"; fi
    fi
    mkdir -p "${RECORD_DIR}"
    echo "$PATCH" > "$RECORD.new"
    mv "$RECORD.new" "$RECORD"
    ;;
  abort-upgrade | abort-remove | abort-deconfigure) ;;
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
    if loaded "$PATCH"; then kpatch unload "$PATCH"; fi
    if installed "$PATCH"; then kpatch uninstall -k "$KVER" "$PATCH"; fi
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
  return `#!/bin/sh
# postrm of ${v.package} (written by 'kpatch package', kpatch-ts)
set -e

case "$1" in
  remove | purge)
    rm -f "${RECORD_DIR}/${v.package}"
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
