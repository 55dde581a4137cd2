/**
 * postconf: show and edit the Postwarden configuration, with Postfix's
 * options and output format.
 *
 *     postconf [-c DIR] [-d | -n] [-x] [-h] [name ...]
 *     postconf [-c DIR] -e name=value ...
 *     postconf [-c DIR] -X name ...
 *     postconf [-c DIR] -M [name[/type] ...]
 *     postconf [-c DIR] -b | -t [template_file]
 *
 * -c DIR (else MAIL_CONFIG, else the repo's conf/), -d defaults, -n explicit
 * settings, -x expand values, -h values only, -e edit main.cf in place
 * (atomically, keeping comments), -X delete, -M master.cf services, -t the
 * bounce templates (bounce(5)), -b their text with $name expanded.
 * Without names it prints every parameter of the table (not Postfix's ~1000,
 * which Postwarden does not implement). Not supported: -f (folding), -p,
 * -P, -F, -m, -l, -T, -a, -A, -#.
 *
 * Run: deno run --allow-read --allow-write --allow-env --allow-sys=hostname commands/postconf.ts
 *
 * @module
 */

import {
  configDirFrom,
  ConfigError,
  editMainCf,
  expand,
  formatMasterService,
  loadConfig,
  makeConfig,
  type MasterService,
  PARAMS,
  parseAssignment,
  parseMasterCf,
  POSTFIX_NAMES,
  referencedNames,
} from "../lib/config/mod.ts";
import type { Config } from "../lib/config/mod.ts";
import { getopt, GetoptError } from "./_cli.ts";
import { resolve } from "node:path";
import { bounceTemplates, templateParam, templateTimes } from "../lib/config/bounce_template.ts";
import { dumpExpandedTemplates, dumpTemplates, TemplateError } from "../lib/dsn/template.ts";
import { printHelpIfAsked } from "./_help.ts";

/** Where postconf writes and what it knows about its environment. */
export interface PostconfIo {
  /** One call per output line (without newline). */
  out(line: string): void;
  /** One call per diagnostic line (without newline, with "postconf: " prefix). */
  err(line: string): void;
  /** Environment variables (MAIL_CONFIG). @default {} */
  env?: { MAIL_CONFIG?: string };
  /** Host name for the myhostname default. @default Deno.hostname() when permitted */
  hostname?: string;
}

interface Options {
  c?: string;
  d: boolean;
  e: boolean;
  h: boolean;
  M: boolean;
  n: boolean;
  x: boolean;
  X: boolean;
  /** -b: expanded bounce template text; -t: the templates. */
  b: boolean;
  t: boolean;
  names: string[];
}

class UsageError extends Error {
  override readonly name = "UsageError";
}

const USAGE =
  "usage: postconf [-c config_dir] [-d | -n] [-h] [-x] [-e | -X | -M | -b | -t] [name...]";

/** Parse the command line the way getopt(3) does ("-nx", "-cDIR", "-c DIR", "--"). */
function parseArgs(args: string[]): Options {
  const o: Options = {
    d: false,
    e: false,
    h: false,
    M: false,
    n: false,
    x: false,
    X: false,
    b: false,
    t: false,
    names: [],
  };
  let parsed;
  try {
    parsed = getopt(args, "bc:dehMntxX");
  } catch (e) {
    if (e instanceof GetoptError) throw new UsageError(`${e.message}\n${USAGE}`);
    throw e;
  }
  for (const { flag, value } of parsed.opts) {
    if (flag === "c") o.c = value;
    else o[flag as "d"] = true;
  }
  o.names = parsed.operands;
  const modes = [o.e, o.X, o.M, o.b, o.t].filter(Boolean).length;
  if (modes > 1) throw new UsageError("specify at most one of -b, -e, -M, -t and -X");
  if ((o.b || o.t) && o.names.length > 1) throw new UsageError("-b and -t take at most one file");
  if (o.d && o.n) throw new UsageError("specify one of -d and -n");
  if (o.e && o.names.length === 0) throw new UsageError("-e requires name=value argument");
  if (o.X && o.names.length === 0) throw new UsageError("-X requires parameter name argument");
  return o;
}

function hostnameOf(io: PostconfIo): string | undefined {
  if (io.hostname !== undefined) return io.hostname;
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

/**
 * `name = value`, `name =` when empty, or the bare value with -h. Like
 * Postfix's postconf, whitespace runs print as one space and the value is
 * trimmed (the value itself is not changed).
 */
function line(name: string, value: string, valueOnly: boolean): string {
  value = value.split(/[ \t\r\n]+/).filter((w) => w !== "").join(" ");
  if (valueOnly) return value;
  return value === "" ? `${name} =` : `${name} = ${value}`;
}

/** Replace dir/main.cf with new text: write a temp file beside it, then rename. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.postconf.${Deno.pid}.tmp`;
  try {
    let mode: number | undefined;
    try {
      mode = (await Deno.stat(path)).mode ?? undefined;
    } catch {
      mode = undefined;
    }
    await Deno.writeTextFile(tmp, text, { mode: mode ?? 0o644 });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new ConfigError(`write ${path}: ${(e as Error).message}`);
  }
}

async function readOrFatal(path: string, optional = false): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      if (optional) return "";
      throw new ConfigError(`open ${path}: No such file or directory`);
    }
    throw new ConfigError(`open ${path}: ${(e as Error).message}`);
  }
}

/** Names postconf knows in this configuration: the table, set Postfix names, set names used by $name. */
function knownNames(cfg: Config): Set<string> {
  const known = new Set(PARAMS.keys());
  const postfix = new Set(POSTFIX_NAMES);
  const explicit = cfg.explicit();
  const referenced = new Set<string>();
  for (const v of [...explicit.values(), ...[...PARAMS.values()].map((p) => p.default)]) {
    for (const n of referencedNames(v)) referenced.add(n);
  }
  for (const name of explicit.keys()) {
    if (postfix.has(name) || referenced.has(name)) known.add(name);
  }
  return known;
}

/** "main.cf, line 3: ..." becomes "/etc/x/main.cf, line 3: ...", as Postfix prints it. */
function withDir(dir: string, warning: string): string {
  return /^(main|master)\.cf\b/.test(warning) ? `${dir}/${warning}` : warning;
}

async function showParameters(o: Options, dir: string, io: PostconfIo): Promise<void> {
  const hostname = hostnameOf(io);
  const named = { hostname, processName: "postconf" };
  const cfg = o.d ? makeConfig(dir, "", named) : await loadConfig(dir, named);
  const known = knownNames(cfg);
  let names = o.names;
  if (o.n) {
    const explicit = [...cfg.explicit().keys()].filter((n) => known.has(n));
    if (o.c || io.env?.MAIL_CONFIG) explicit.push("config_directory");
    names = [...new Set(explicit)].sort();
  } else if (names.length === 0) {
    names = [...known].sort();
  }
  const postfix = new Set(POSTFIX_NAMES);
  for (const name of names) {
    if (!known.has(name)) {
      io.err(
        postfix.has(name)
          ? `postconf: warning: parameter ${name} is not supported by Postwarden`
          : `postconf: warning: ${name}: unknown parameter`,
      );
      continue;
    }
    let value: string;
    if (o.n && name === "config_directory" && !cfg.isSet(name)) {
      value = o.c ?? io.env?.MAIL_CONFIG ?? dir;
    } else if (o.d && name === "config_directory") value = PARAMS.get(name)!.default;
    // -x expands like Postfix's postconf: `myorigin = /etc/mailname` stays the
    // path (Config.str would read the file, as the daemons do).
    else if (o.x && !PARAMS.get(name)?.raw) {
      value = expand(cfg.raw(name) ?? "", cfg.raw, { stack: [name] });
    } else value = cfg.raw(name) ?? "";
    io.out(line(name, value, o.h));
  }
  if (o.d) return;
  // What Postfix's postconf warns about: main.cf syntax and unused names. What
  // Postwarden does not implement is `postwarden check`'s to report.
  for (const w of cfg.warnings) {
    if (/^main\.cf\b/.test(w)) io.err(`postconf: warning: ${withDir(dir, w)}`);
  }
}

async function editParameters(o: Options, dir: string): Promise<void> {
  const path = `${dir}/main.cf`;
  const text = await readOrFatal(path, o.e);
  const edits = o.e
    ? { set: new Map(o.names.map((a) => parseAssignment(a))) }
    : { remove: o.names };
  await writeAtomically(path, editMainCf(text, edits));
}

async function showServices(o: Options, dir: string, io: PostconfIo): Promise<void> {
  const path = `${dir}/master.cf`;
  const { services, warnings } = parseMasterCf(await readOrFatal(path));
  for (const w of warnings) io.err(`postconf: warning: ${withDir(dir, w)}`);
  const wanted = (s: MasterService, req: string) => {
    const [name, type] = req.split("/", 2);
    return s.name === name && (type === undefined || s.type === type);
  };
  if (o.names.length === 0) {
    services.forEach((s) => io.out(formatMasterService(s)));
    return;
  }
  for (const req of o.names) {
    const matched = services.filter((s) => wanted(s, req));
    if (matched.length === 0) io.err(`postconf: warning: unmatched request: "${req}"`);
    matched.forEach((s) => io.out(formatMasterService(s)));
  }
}

/**
 * -b and -t: the bounce templates of FILE, else of bounce_template_file,
 * else the built-in ones; -b with their text expanded (bounce(5)).
 */
async function showTemplates(o: Options, dir: string, io: PostconfIo): Promise<void> {
  const cfg = await loadConfig(dir, { hostname: hostnameOf(io), processName: "postconf" });
  const path = o.names[0] === undefined ? undefined : resolve(o.names[0]);
  const file = path === undefined ? undefined : { path, text: await readOrFatal(path) };
  const templates = bounceTemplates(cfg, file);
  const lines = o.t
    ? dumpTemplates(templates)
    : dumpExpandedTemplates(templates, templateParam(cfg), templateTimes(cfg));
  lines.forEach((l) => io.out(l));
}

/** Run postconf with `args`; returns the exit status (0 ok, 1 fatal). */
export async function postconf(args: string[], io: PostconfIo): Promise<number> {
  try {
    const o = parseArgs(args);
    const dir = configDirFrom({ c: o.c }, io.env ?? {});
    if (o.e || o.X) await editParameters(o, dir);
    else if (o.M) await showServices(o, dir, io);
    else if (o.b || o.t) await showTemplates(o, dir, io);
    else await showParameters(o, dir, io);
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError || e instanceof TemplateError) {
      io.err(`postconf: fatal: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  if (printHelpIfAsked("postconf", Deno.args)) Deno.exit(0);
  const enc = new TextEncoder();
  const out: string[] = [];
  const code = await postconf(Deno.args, {
    out: (l) => out.push(l),
    err: (l) => Deno.stderr.writeSync(enc.encode(l + "\n")),
    env: { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") },
  });
  let bytes = enc.encode(out.length ? out.join("\n") + "\n" : "");
  while (bytes.length > 0) bytes = bytes.subarray(await Deno.stdout.write(bytes));
  Deno.exit(code);
}
