/**
 * This machine's apt sources, read (never changed): the Debian mirror of a suite, and this
 * machine's own Debian release. The lab's root file systems and the private apt states of other
 * suites (apt-state.ts) take their mirrors from here.
 */
import { existsSync, readFileSync } from "node:fs";

/** The mirror of `suite` in apt sources (deb822 URIs: or a one-line deb entry). */
export function debianMirror(sources: string, suite = "bookworm"): string | undefined {
  const blocks = sources.split(/\n\s*\n/);
  for (const b of blocks) {
    const uri = /^URIs:\s*(\S+)/m.exec(b)?.[1];
    const suites = /^Suites:\s*(.*)$/m.exec(b)?.[1]?.split(/\s+/) ?? [];
    if (uri && suites.includes(suite)) return uri;
  }
  for (const line of sources.split("\n")) {
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s/.exec(line.trim());
    if (m && m[2] === suite) return m[1];
  }
  return undefined;
}

/** This machine's Debian apt sources (the one-line list and deb822 debian.sources). */
export function hostAptSources(): string {
  const files = ["/etc/apt/sources.list", "/etc/apt/sources.list.d/debian.sources"];
  return files.map((f) => (existsSync(f) ? readFileSync(f, "utf8") : "")).join("\n\n");
}

/** This machine's Debian codename (bookworm), from /etc/os-release; undefined off Debian. */
export function hostCodename(osRelease = "/etc/os-release"): string | undefined {
  if (!existsSync(osRelease)) return undefined;
  return /^VERSION_CODENAME=["']?(\w+)/m.exec(readFileSync(osRelease, "utf8"))?.[1];
}

/**
 * The archive and security mirrors to reach another suite with: the ones this machine uses for
 * its own release, else Debian's CDN.
 */
export function suiteMirrors(
  sources: string,
  host: string | undefined,
): { archive: string; security: string } {
  return {
    archive: (host && debianMirror(sources, host)) || "http://deb.debian.org/debian",
    security: (host && debianMirror(sources, `${host}-security`)) || "http://deb.debian.org/debian-security",
  };
}
