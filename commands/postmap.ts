/**
 * NAME
 *   postmap - build and query lookup tables, as Postfix's postmap(1)
 *
 * SYNOPSIS
 *   postmap [-Nfinoprsvw] [-c config_dir] [-d key] [-q key] [type:]file...
 *
 * DESCRIPTION
 *   Without -q, -d or -s, compiles each `type:file` source into the index
 *   that `hash:`, `btree:`, `lmdb:` and `cdb:` tables read
 *   (`file.<type>.pwdb`, see lib/maps/map_hash.ts), written to a
 *   temporary file and renamed into place. A file named without a type is
 *   of `default_database_type`.
 *
 *   -q key   print the value of key in the first table that has it; exit 0
 *            when found, 1 when not. Any table type works (inline:,
 *            texthash:, unionmap:, ...).
 *   -q -     read keys from standard input, print "key<TAB>value" for each
 *            key found; exit 0 when any was found.
 *   -s       print every entry of the (first) table.
 *   -d key   delete key from each table (-d -: keys from standard input);
 *            exit 0 when any was deleted.
 *   -i       add "key value" lines from standard input to the table.
 *   -f       do not fold keys to lower case (build, query, delete).
 *   -r / -w  on a duplicate key: keep the last value / keep the first
 *            silently (default: keep the first with a warning).
 *   -N / -n  accepted; the index stores lengths, so NUL termination of
 *            keys and values (for old sendmail/NIS readers) has no meaning.
 *   -o       do not give the index the source file's owner (root only).
 *   -p       do not copy the source's group/other read bits to the index.
 *   -v       accepted (Postfix's verbose logging); no effect.
 *   -c dir   configuration directory (main.cf).
 *
 *   Not supported (each is an error naming it): -b, -B, -h, -m (message
 *   header/body keys), -F (file contents as values), -S, -u, -U.
 *
 *   Messages go to standard error as "postmap: warning: ..." and
 *   "postmap: fatal: ..." (then exit 1), in Postfix's words.
 *
 * PARAMETERS
 *   default_database_type (hash), myhostname (postalias's YP_MASTER_NAME).
 *
 * @module
 */
import { type Config, configDirFrom, ConfigError, loadConfig } from "../lib/config/mod.ts";
import { type Dict, DictError, parseMapSpec } from "../lib/maps/dict.ts";
import {
  COMPILED_TYPES,
  compiledPath,
  CompiledTable,
  compileMapSource,
  encodeTable,
  readCompiled,
  writeCompiled,
} from "../lib/maps/map_hash.ts";
import {
  decodeSource,
  type DuplicatePolicy,
  foldKey,
  parseAliasSource,
  parseMapSource,
  resolveDuplicates,
  type SourceEntry,
} from "../lib/maps/source.ts";
import { getopt, GetoptError, writeStdout } from "./_cli.ts";
import { printHelpIfAsked } from "./_help.ts";

/** Where the program's output goes (tests pass their own). */
export interface PostmapIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Standard input (for -q -, -d -, -i). */
  stdin: () => Promise<string>;
  env?: { MAIL_CONFIG?: string };
}

/** postmap or postalias: the program name and the source format. */
export type Flavor = "postmap" | "postalias";

/**
 * The table registry, loaded only to query: it imports every backend
 * (SQL clients included), which a build does not need.
 */
const registry = () => import("../lib/maps/registry.ts");

class Fatal extends Error {
  override readonly name = "Fatal";
}

interface Options {
  c?: string;
  query?: string;
  del?: string;
  seq: boolean;
  incremental: boolean;
  fold: boolean;
  dup: DuplicatePolicy;
  asOwner: boolean;
  savePerm: boolean;
  /** smtputf8_enable: full Unicode folding and UTF-8 checks (set from main.cf). */
  utf8: boolean;
  operands: string[];
}

const SPEC = "NbBc:d:fFhimnopq:rsSuUvw";
const UNSUPPORTED = new Set([..."bBFhmSuU"]);

function parseArgs(flavor: Flavor, args: string[]): Options {
  let parsed;
  try {
    parsed = getopt(args, flavor === "postmap" ? SPEC : "Nc:d:finopq:rsvw");
  } catch (e) {
    if (e instanceof GetoptError) throw new Fatal(`${e.message}; ${usage(flavor)}`);
    throw e;
  }
  const o: Options = {
    seq: false,
    incremental: false,
    fold: true,
    dup: "warn",
    asOwner: true,
    savePerm: true,
    utf8: true,
    operands: parsed.operands,
  };
  const one = () => {
    if (o.seq || o.query !== undefined || o.del !== undefined) {
      throw new Fatal("specify only one of -s -q or -d");
    }
  };
  for (const { flag, value } of parsed.opts) {
    if (UNSUPPORTED.has(flag)) throw new Fatal(`option -${flag} is not supported by Postwarden`);
    switch (flag) {
      case "c":
        o.c = value;
        break;
      case "d":
        one();
        o.del = value;
        break;
      case "q":
        one();
        o.query = value;
        break;
      case "s":
        one();
        o.seq = true;
        break;
      case "f":
        o.fold = false;
        break;
      case "i":
        o.incremental = true;
        break;
      case "r":
        o.dup = "replace";
        break;
      case "w":
        o.dup = "ignore";
        break;
      case "o":
        o.asOwner = false;
        break;
      case "p":
        o.savePerm = false;
        break;
        // N, n, v: see the module comment.
    }
  }
  if (o.operands.length === 0) throw new Fatal(usage(flavor));
  return o;
}

function usage(flavor: Flavor): string {
  return flavor === "postmap"
    ? "usage: postmap [-Nfinoprsvw] [-c config_dir] [-d key] [-q key] [map_type:]file..."
    : "usage: postalias [-Nfinoprsvw] [-c config_dir] [-d key] [-q key] [map_type:]file...";
}

/** `[type:]file` with the default type filled in. */
function specOf(operand: string, defaultType: string): { type: string; name: string } {
  if (!operand.includes(":")) return { type: defaultType, name: operand };
  const { type, name } = parseMapSpec(operand);
  return { type, name };
}

const isCompiled = (type: string) => (COMPILED_TYPES as readonly string[]).includes(type);

/**
 * smtputf8_enable as Postfix computes it: an explicit setting, else yes
 * from compatibility_level 1 on (the parameter itself belongs to the SMTP
 * code; postmap only needs its value).
 */
function smtputf8(config: Config): boolean {
  if (config.isSet("smtputf8_enable")) {
    return /^yes$/i.test((config.raw("smtputf8_enable") ?? "").trim());
  }
  return parseFloat(config.str("compatibility_level")) >= 1;
}

/** The extra entries postalias appends (sendmail's "@" and the NIS stamps). */
function aliasSignatures(config: Config): SourceEntry[] {
  const stamp = String(Math.floor(Date.now() / 1000)).padStart(10, "0");
  return [
    { key: "@", value: "@", line: 0 },
    { key: "YP_LAST_MODIFIED", value: stamp, line: 0 },
    { key: "YP_MASTER_NAME", value: config.str("myhostname"), line: 0 },
  ];
}

/** The index's mode: 0644 less what the source denies group/other (unless -p). */
async function indexMode(o: Options, source: string): Promise<number> {
  if (!o.savePerm) return 0o644;
  try {
    const st = await Deno.stat(source);
    if (st.isFile && st.mode !== null) return 0o644 & ~(0o022 | (~st.mode & 0o077));
  } catch {
    // stdin (-i) or no source: the default
  }
  return 0o644;
}

async function build(
  flavor: Flavor,
  o: Options,
  config: Config,
  type: string,
  name: string,
  io: PostmapIo,
): Promise<void> {
  const warn = (m: string) => io.err(`${flavor}: warning: ${m}`);
  if (!isCompiled(type)) {
    if (!(await registry()).supportedTypes().includes(type)) {
      throw new Fatal(`unsupported dictionary type: ${type}`);
    }
    throw new Fatal(`unsupported dictionary type: ${type} does not support bulk-mode creation.`);
  }
  const file = compiledPath(type, name);
  let existing: [string, string][] = [];
  if (o.incremental) {
    try {
      existing = [...(await readCompiled(type, name, warn)).entries()];
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
    }
  }
  const srcPath = o.incremental ? "stdin" : name;
  let source: Uint8Array;
  if (o.incremental) {
    source = new TextEncoder().encode(await io.stdin());
  } else {
    try {
      source = await Deno.readFile(name);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "No such file or directory"
        : (e as Error).message;
      throw new Fatal(`open ${name}: ${why}`);
    }
  }
  let bytes: Uint8Array;
  if (flavor === "postmap") {
    bytes = compileMapSource(source, {
      path: srcPath,
      warn,
      fold: o.fold,
      utf8: o.utf8,
      policy: o.dup,
      existing,
    });
  } else {
    const dupWarn = (e: SourceEntry, key = e.key) =>
      warn(
        e.line > 0
          ? `${srcPath}, line ${e.line}: duplicate entry: "${key}"`
          : `${file}: duplicate entry: "${key}"`,
      );
    const src = { path: srcPath, warn, utf8: o.utf8 };
    const entries = parseAliasSource(decodeSource(source, src), src);
    const merged = resolveDuplicates(
      (function* () {
        for (const [key, value] of existing) yield { key, value, line: 0 };
        yield* entries;
      })(),
      { fold: o.fold, utf8: o.utf8, policy: o.dup, warn: dupWarn },
    );
    // The signatures replace older ones on -i, as Postfix; their names are not folded.
    for (const s of aliasSignatures(config)) {
      if (s.key === "@" && merged.has("@") && !o.incremental) {
        if (o.dup === "warn") dupWarn(s);
        if (o.dup !== "replace") continue;
      }
      merged.set(s.key, s.value);
    }
    bytes = encodeTable([...merged]);
  }
  const mode = await indexMode(o, name);
  await writeCompiled(file, bytes, { mode, sync: false });
  await giveToSourceOwner(o, name, file);
}

/** As Postfix run by root: the index belongs to the source's owner (unless -o). */
async function giveToSourceOwner(o: Options, source: string, file: string): Promise<void> {
  if (!o.asOwner || o.incremental) return;
  try {
    if (Deno.uid() !== 0) return;
    const st = await Deno.stat(source);
    if (st.uid !== null && st.gid !== null && (st.uid !== 0 || st.gid !== 0)) {
      await Deno.chown(file, st.uid, st.gid);
    }
  } catch {
    // no --allow-sys=uid or not permitted: the index stays the builder's
  }
}

async function openOrFatal(spec: string, o: Options, io: PostmapIo, flavor: Flavor) {
  try {
    return await (await registry()).openDict(spec, {
      fold: o.fold,
      utf8: o.utf8,
      warn: (m) => io.err(`${flavor}: warning: ${m}`),
    });
  } catch (e) {
    if (e instanceof DictError) throw new Fatal(e.message);
    throw e;
  }
}

async function lookupOrFatal(d: Dict, spec: string, key: string): Promise<string | undefined> {
  try {
    return await d.lookup(key);
  } catch (e) {
    if (e instanceof DictError) throw new Fatal(`table ${spec}: query error: ${e.message}`);
    throw e;
  }
}

function emptyWarning(flavor: Flavor, io: PostmapIo, spec: string, key: string) {
  io.err(`${flavor}: warning: table ${spec}: key ${key}: empty string result is not allowed`);
  io.err(`${flavor}: warning: table ${spec} should return NO RESULT in case of NOT FOUND`);
}

/** The operand as Postfix names it in messages ("type:name"). */
function fullSpec(operand: string, defaultType: string): string {
  const { type, name } = specOf(operand, defaultType);
  return `${type}:${name}`;
}

async function query(flavor: Flavor, o: Options, defaultType: string, io: PostmapIo) {
  const specs = o.operands.map((op) => fullSpec(op, defaultType));
  if (o.query !== "-") {
    for (const spec of specs) {
      const d = await openOrFatal(spec, o, io, flavor);
      const v = await lookupOrFatal(d, spec, o.query!);
      await d.close();
      if (v !== undefined) {
        if (v === "") emptyWarning(flavor, io, spec, o.query!);
        io.out(v);
        return 0;
      }
    }
    return 1;
  }
  const dicts: (Dict | undefined)[] = specs.map(() => undefined);
  let found = false;
  const input = await io.stdin();
  const keys = input.split("\n");
  if (keys[keys.length - 1] === "") keys.pop();
  const sep = flavor === "postalias" ? ":\t" : "\t";
  try {
    for (const key of keys) {
      for (let n = 0; n < specs.length; n++) {
        dicts[n] ??= await openOrFatal(specs[n], o, io, flavor);
        const v = await lookupOrFatal(dicts[n]!, specs[n], key);
        if (v !== undefined) {
          if (v === "") emptyWarning(flavor, io, specs[n], key);
          io.out(key + sep + v);
          found = true;
          break;
        }
      }
    }
  } finally {
    await Promise.all(dicts.map((d) => d?.close()));
  }
  return found ? 0 : 1;
}

async function sequence(flavor: Flavor, o: Options, defaultType: string, io: PostmapIo) {
  const { type, name } = specOf(o.operands[0], defaultType);
  const warn = (m: string) => io.err(`${flavor}: warning: ${m}`);
  let entries: Iterable<[string, string]>;
  if (isCompiled(type)) {
    try {
      entries = (await readCompiled(type, name, warn)).entries();
    } catch (e) {
      if (e instanceof DictError) throw new Fatal(e.message);
      throw e;
    }
  } else if (type === "texthash") {
    const src = { path: name, warn, ignoringSuffix: true, utf8: o.utf8 };
    const text = decodeSource(await Deno.readFile(name), src);
    entries = resolveDuplicates(parseMapSource(text, src), {
      fold: o.fold,
      utf8: o.utf8,
      policy: "warn",
      warn: (e) => warn(`${name}, line ${e.line}: duplicate entry: "${e.key}"`),
    });
  } else {
    throw new Fatal(`table ${type}:${name}: listing all entries (-s) is not supported`);
  }
  const sep = flavor === "postalias" ? ":\t" : "\t";
  for (const [k, v] of entries) io.out(k + sep + v);
  return 0;
}

async function remove(flavor: Flavor, o: Options, defaultType: string, io: PostmapIo) {
  const warn = (m: string) => io.err(`${flavor}: warning: ${m}`);
  const keys = o.del === "-" ? (await io.stdin()).split("\n").filter((k) => k !== "") : [o.del!];
  let found = false;
  for (const operand of o.operands) {
    const { type, name } = specOf(operand, defaultType);
    if (!isCompiled(type)) {
      throw new Fatal(`table ${type}:${name}: deleting entries (-d) is not supported`);
    }
    let table: CompiledTable;
    try {
      table = await readCompiled(type, name, warn);
    } catch (e) {
      if (e instanceof DictError) throw new Fatal(e.message);
      throw e;
    }
    const entries = new Map(table.entries());
    let changed = false;
    for (const key of keys) {
      if (entries.delete(o.fold ? foldKey(key, o.utf8) : key)) changed = true;
    }
    if (changed) {
      const file = compiledPath(type, name);
      const st = await Deno.stat(file);
      await writeCompiled(file, encodeTable([...entries]), {
        mode: (st.mode ?? 0o644) & 0o777,
        sync: false,
      });
      found = true;
    }
  }
  return found ? 0 : 1;
}

/**
 * Runs postmap (or postalias) with `args`; returns the exit status.
 * Usage errors and fatal errors are printed as "postmap: fatal: ...".
 */
export async function postmap(args: string[], io: PostmapIo, flavor: Flavor = "postmap") {
  try {
    const o = parseArgs(flavor, args);
    const config = await loadConfig(configDirFrom({ c: o.c }, io.env ?? {}));
    const defaultType = config.str("default_database_type");
    o.utf8 = smtputf8(config);
    if (o.query !== undefined) return await query(flavor, o, defaultType, io);
    if (o.seq) return await sequence(flavor, o, defaultType, io);
    if (o.del !== undefined) return await remove(flavor, o, defaultType, io);
    for (const operand of o.operands) {
      if (/^proxy:/i.test(operand.trim())) {
        throw new Fatal("can't create maps via the proxy service");
      }
      const { type, name } = specOf(operand, defaultType);
      await build(flavor, o, config, type, name, io);
    }
    return 0;
  } catch (e) {
    if (e instanceof Fatal || e instanceof ConfigError || e instanceof DictError) {
      io.err(`${flavor}: fatal: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** Standard input read whole, as text. */
export async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

/** Runs a flavor as the main program: buffered stdout, stderr as it comes. */
export async function runMain(program: string, run: (io: PostmapIo) => Promise<number>) {
  const enc = new TextEncoder();
  const out: string[] = [];
  let code: number;
  try {
    code = await run({
      out: (l) => out.push(l),
      err: (l) => Deno.stderr.writeSync(enc.encode(l + "\n")),
      stdin: readStdin,
      env: { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") },
    });
  } catch (e) {
    Deno.stderr.writeSync(enc.encode(`${program}: fatal: ${(e as Error).message}\n`));
    code = 1;
  }
  await writeStdout(enc.encode(out.length ? out.join("\n") + "\n" : ""));
  Deno.exit(code);
}

if (import.meta.main) {
  if (printHelpIfAsked("postmap", Deno.args)) Deno.exit(0);
  await runMain("postmap", (io) => postmap(Deno.args, io));
}
