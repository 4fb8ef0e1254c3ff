/**
 * Text from files and the kernel (modinfo strings, directory names) as it may be shown: a string
 * someone else wrote must not add lines to our output or drive the terminal.
 */

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Control characters (C0, DEL, C1) and line or paragraph separators written as escapes (\n, \t,
 * \x1b, \u2028); everything else, other scripts included, as it is.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\p{Cc}\u2028\u2029]/gu, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}

/** A name as it may be shown on one line: control characters and quotes escaped, long names cut. */
export function printable(name: string): string {
  const shown = JSON.stringify(name).slice(1, -1);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}
