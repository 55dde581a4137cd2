/**
 * main.cf syntax: split text into `name = value` definitions (comments,
 * continuation lines, last definition wins with a warning) and rewrite text
 * for `postconf -e` / `postconf -X` keeping comments and unrelated lines.
 * Pure string functions; no expansion (expand.ts) and no file I/O.
 *
 * @module
 */

import { ConfigError } from "./errors.ts";

/** One logical line: a definition, with the physical lines it spans. */
interface LogicalLine {
  name: string;
  value: string;
  /** 0-based index of the first physical line. */
  start: number;
  /** 0-based index one past the last physical line. */
  end: number;
}

function isBlankOrComment(line: string): boolean {
  const t = line.trimStart();
  return t === "" || t.startsWith("#");
}

/** Split lines into logical definitions; errors for a line without "=". */
function logicalLines(lines: string[], warnings: string[] = []): LogicalLine[] {
  const out: LogicalLine[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlankOrComment(line)) {
      i++;
      continue;
    }
    if (/^\s/.test(line)) {
      // Only possible before the first definition: Postfix warns and skips.
      warnings.push(`main.cf: logical line must not start with whitespace: "${line}"`);
      i++;
      continue;
    }
    const start = i;
    let text = line;
    i++;
    while (i < lines.length && /^\s/.test(lines[i]) && !isBlankOrComment(lines[i])) {
      text += " " + lines[i].trim();
      i++;
    }
    // Blank and comment lines between continuation lines end the logical
    // line in Postfix only when followed by a non-whitespace line; a
    // comment inside a continued value is skipped.
    let j = i;
    while (j < lines.length && isBlankOrComment(lines[j])) j++;
    while (j < lines.length && /^\s/.test(lines[j]) && !isBlankOrComment(lines[j])) {
      text += " " + lines[j].trim();
      i = j + 1;
      j = i;
      while (j < lines.length && isBlankOrComment(lines[j])) j++;
    }
    const eq = text.indexOf("=");
    if (eq < 0) {
      throw new ConfigError(
        `main.cf, line ${start + 1}: missing '=' after attribute name: "${text.trim()}"`,
      );
    }
    const name = text.slice(0, eq).trim();
    if (/\s/.test(name)) {
      throw new ConfigError(
        `main.cf, line ${start + 1}: missing '=' after attribute name: "${text.trim()}"`,
      );
    }
    if (name === "") {
      throw new ConfigError(`main.cf, line ${start + 1}: missing attribute name: "${text.trim()}"`);
    }
    out.push({ name, value: text.slice(eq + 1).trim(), start, end: i });
  }
  return out;
}

function splitLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Parse main.cf text. `entries` holds the last definition of each name, in
 * the order names were first defined; `lines` the 1-based line number of
 * that definition. A repeated definition adds a warning in Postfix's words:
 * `main.cf, line N: overriding earlier entry: name=earlier-value`.
 * Throws ConfigError for a line that is not `name = value`.
 */
export function parseMainCf(
  text: string,
): { entries: Map<string, string>; lines: Map<string, number>; warnings: string[] } {
  const entries = new Map<string, string>();
  const lines = new Map<string, number>();
  const warnings: string[] = [];
  for (const def of logicalLines(splitLines(text), warnings)) {
    const earlier = entries.get(def.name);
    if (earlier !== undefined) {
      warnings.push(
        `main.cf, line ${def.start + 1}: overriding earlier entry: ${def.name}=${earlier}`,
      );
    }
    entries.set(def.name, def.value);
    lines.set(def.name, def.start + 1);
  }
  return { entries, lines, warnings };
}

/**
 * Parse a `postconf -e` argument `name=value` (whitespace around both
 * trimmed). Throws ConfigError like Postfix for a missing "=".
 */
export function parseAssignment(arg: string): [string, string] {
  const eq = arg.indexOf("=");
  if (eq < 0) throw new ConfigError(`missing '=' after attribute name: "${arg.trim()}"`);
  const name = arg.slice(0, eq).trim();
  if (name === "" || /\s/.test(name)) throw new ConfigError(`bad parameter name: "${name}"`);
  return [name, arg.slice(eq + 1).trim()];
}

/**
 * Rewrite main.cf text: each name in `set` has every definition (with its
 * continuation lines) replaced by one `name = value` line at the place of
 * its first definition, or appended at the end; each name in `remove` loses
 * all its definitions. Comments and other lines stay as they are. The
 * result ends with a newline.
 */
export function editMainCf(
  text: string,
  edits: { set?: Map<string, string>; remove?: Iterable<string> },
): string {
  const set = edits.set ?? new Map<string, string>();
  const remove = new Set(edits.remove ?? []);
  const lines = splitLines(text);
  const defs = logicalLines(lines);
  const replaceAt = new Map<number, string>(); // start line -> new text ("" = drop)
  const dropped = new Set<number>();
  const done = new Set<string>();
  for (const def of defs) {
    if (!set.has(def.name) && !remove.has(def.name)) continue;
    // Only the definition's own physical lines: comments it swallowed stay.
    for (let k = def.start; k < def.end; k++) {
      if (!isBlankOrComment(lines[k])) dropped.add(k);
    }
    if (set.has(def.name) && !done.has(def.name)) {
      replaceAt.set(def.start, `${def.name} = ${set.get(def.name)}`);
      done.add(def.name);
    }
  }
  const out: string[] = [];
  lines.forEach((line, k) => {
    const replacement = replaceAt.get(k);
    if (replacement !== undefined) out.push(replacement);
    else if (!dropped.has(k)) out.push(line);
  });
  for (const [name, value] of set) {
    if (!done.has(name)) out.push(`${name} = ${value}`);
  }
  return out.length ? out.join("\n") + "\n" : "";
}
