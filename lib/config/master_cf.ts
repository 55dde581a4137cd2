/**
 * master.cf syntax: one service per logical line (`service type private
 * unpriv chroot wakeup maxproc command args...`), comments, continuation
 * lines, "-" fields with Postfix's defaults, `{ ... }` grouped arguments and
 * `-o name=value` / `-o { name = value }` overrides; plus the normalized
 * one-line form that `postconf -M` prints.
 *
 * Pure string functions: no file I/O and no expansion of override values
 * (a service applies its overrides through makeConfig's `overrides`).
 *
 * @module
 */

import { ConfigError } from "./errors.ts";

/** One master.cf service entry. */
export interface MasterService {
  /** Service name (for inet: [host:]port). */
  name: string;
  type: "inet" | "unix" | "unix-dgram" | "fifo" | "pass";
  /** @default true */
  private: boolean;
  /** @default true */
  unprivileged: boolean;
  /** @default true */
  chroot: boolean;
  /** Wakeup interval in seconds; 0 = none. @default 0 */
  wakeup: number;
  /** Process limit; 0 = no limit. @default 100 (default_process_limit) */
  maxproc: number;
  /** Program name (a daemon under daemon_directory). */
  command: string;
  /** Arguments after the command, without the `-o` overrides; `{ a b }` groups become "a b". */
  args: string[];
  /** `-o name=value` settings, in order. */
  overrides: Record<string, string>;
  /** 1-based line number of the entry. */
  line: number;
  /** Fields as written, for printing like `postconf -M` ("-" kept, wakeup "?" kept). */
  raw?: {
    private: string;
    unprivileged: string;
    chroot: string;
    wakeup: string;
    maxproc: string;
    /** Normalized arguments after the command, overrides included, in order. */
    argv: string[];
  };
}

const TYPES = new Set(["inet", "unix", "unix-dgram", "fifo", "pass"]);
/** Postfix's default_process_limit, used for a "-" maxproc. */
const DEFAULT_MAXPROC = 100;

/** Split a logical line into tokens; a `{...}` group is one token. */
function tokenize(text: string, where: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (/\s/.test(text[i])) {
      i++;
      continue;
    }
    if (text[i] === "{") {
      let depth = 0;
      let j = i;
      for (; j < text.length; j++) {
        if (text[j] === "{") depth++;
        else if (text[j] === "}" && --depth === 0) break;
      }
      if (j >= text.length) throw new ConfigError(`${where}: missing '}' in "${text}"`);
      tokens.push(text.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !/\s/.test(text[j])) j++;
    tokens.push(text.slice(i, j));
    i = j;
  }
  return tokens;
}

const isGroup = (t: string) => t.startsWith("{") && t.endsWith("}");
const groupBody = (t: string) => t.slice(1, -1).trim();

function yesNo(field: string, what: string, line: string): boolean {
  if (field === "-" || field === "y") return true;
  if (field === "n") return false;
  throw new ConfigError(`invalid ${what} field "${field}" in "${line}"`);
}

/**
 * Parse master.cf text. Throws ConfigError (Postfix's wording) for a bad
 * field count, type, flag, wakeup or maxproc. Warnings: a `-o` without a
 * value or without "=".
 */
export function parseMasterCf(text: string): { services: MasterService[]; warnings: string[] } {
  const services: MasterService[] = [];
  const warnings: string[] = [];
  const lines = text.split(/\r?\n/);
  let i = 0;
  while (i < lines.length) {
    const first = lines[i];
    if (first.trim() === "" || first.trimStart().startsWith("#")) {
      i++;
      continue;
    }
    const lineNo = i + 1;
    if (/^\s/.test(first)) {
      warnings.push(`master.cf: line ${lineNo}: logical line must not start with whitespace`);
      i++;
      continue;
    }
    let logical = first.trim();
    i++;
    while (i < lines.length) {
      const l = lines[i];
      if (l.trim() === "" || l.trimStart().startsWith("#")) {
        i++;
        continue;
      }
      if (!/^\s/.test(l)) break;
      logical += " " + l.trim();
      i++;
    }
    services.push(parseEntry(logical, lineNo, warnings));
  }
  return { services, warnings };
}

function parseEntry(logical: string, lineNo: number, warnings: string[]): MasterService {
  const where = `master.cf: line ${lineNo}`;
  const tokens = tokenize(logical, where);
  if (tokens.length < 8) throw new ConfigError(`file ${where}: bad field count`);
  const [name, type, priv, unpriv, chroot, wakeup, maxproc, command, ...rest] = tokens;
  if (!TYPES.has(type)) throw new ConfigError(`invalid type field "${type}" in "${logical}"`);
  const m = /^(\d+)\??$/.exec(wakeup);
  if (wakeup !== "-" && !m) {
    throw new ConfigError(`invalid wakeup field "${wakeup}" in "${logical}"`);
  }
  if (maxproc !== "-" && !/^\d+$/.test(maxproc)) {
    throw new ConfigError(`invalid maxproc field "${maxproc}" in "${logical}"`);
  }
  const args: string[] = [];
  const argv: string[] = [];
  const overrides: Record<string, string> = {};
  for (let k = 0; k < rest.length; k++) {
    const tok = rest[k];
    if (tok === "-o" && k + 1 < rest.length) {
      const next = rest[k + 1];
      const body = isGroup(next) ? groupBody(next) : next;
      const eq = body.indexOf("=");
      if (eq > 0) {
        const key = body.slice(0, eq).trim();
        const value = body.slice(eq + 1).trim();
        overrides[key] = value;
        argv.push("-o", /\s/.test(value) ? `{${key}=${value}}` : `${key}=${value}`);
        k++;
        continue;
      }
      warnings.push(`${where}: -o option without name=value: "${next}"`);
    } else if (tok === "-o") {
      warnings.push(`${where}: -o option without value`);
    }
    args.push(isGroup(tok) ? groupBody(tok) : tok);
    argv.push(isGroup(tok) ? `{${groupBody(tok)}}` : tok);
  }
  return {
    name,
    type: type as MasterService["type"],
    private: yesNo(priv, "private", logical),
    unprivileged: yesNo(unpriv, "unprivileged", logical),
    chroot: yesNo(chroot, "chroot", logical),
    wakeup: m ? Number(m[1]) : 0,
    maxproc: maxproc === "-" ? DEFAULT_MAXPROC : Number(maxproc),
    command,
    args,
    overrides,
    line: lineNo,
    raw: { private: priv, unprivileged: unpriv, chroot, wakeup, maxproc, argv },
  };
}

/** Column where each of the first eight fields starts in `postconf -M` output. */
const COLUMNS = [0, 11, 17, 25, 33, 41, 49, 57];

/** One service in the normalized one-line form of `postconf -M`. */
export function formatMasterService(s: MasterService): string {
  const flag = (b: boolean) => (b ? "y" : "n");
  const raw = s.raw ?? {
    private: flag(s.private),
    unprivileged: flag(s.unprivileged),
    chroot: flag(s.chroot),
    wakeup: String(s.wakeup),
    maxproc: String(s.maxproc),
    argv: [
      ...Object.entries(s.overrides).flatMap((
        [k, v],
      ) => ["-o", /\s/.test(v) ? `{${k}=${v}}` : `${k}=${v}`]),
      ...s.args.map((a) => (/\s/.test(a) ? `{${a}}` : a)),
    ],
  };
  const fields = [
    s.name,
    s.type,
    raw.private,
    raw.unprivileged,
    raw.chroot,
    raw.wakeup,
    raw.maxproc,
    s.command,
  ];
  let out = "";
  fields.forEach((f, k) => {
    if (out.length > 0) out += " ";
    if (out.length < COLUMNS[k]) out = out.padEnd(COLUMNS[k]);
    out += f;
  });
  return [out, ...raw.argv].join(" ");
}
