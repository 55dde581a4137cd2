/**
 * Config: the settings of one main.cf (plus overrides such as master.cf
 * `-o name=value`) over the defaults of the parameter table, with typed,
 * expanded accessors that follow Postfix semantics. makeConfig is pure;
 * loadConfig is the thin file-reading adapter; configDirFrom picks the
 * directory like Postfix (-c, MAIL_CONFIG, built-in default).
 *
 * Does not read master.cf (master_cf.ts) and does not validate values at
 * load time: a bad value is reported by the accessor that reads it (type,
 * and range with Postfix's wording), so one daemon's bad parameter does not
 * stop the others; validateConfig (validate.ts) asks every accessor at once.
 *
 * `myorigin` may name a file (a value starting with "/", as Debian's
 * Postfix reads /etc/mailname): loadConfig reads the file, and
 * `str("myorigin")` returns its first line. That is the only file read
 * besides main.cf; `$myorigin` in other values stays the path, as in
 * Postfix.
 *
 * @module
 */

import { resolvePath } from "../path/mod.ts";
import { ConfigError } from "./errors.ts";
import { expand, referencedNames } from "./expand.ts";
import { isPerTransport } from "./ignorable.ts";
import { parseMainCf } from "./main_cf.ts";
import { PARAMS } from "./params.ts";
import { POSTFIX_NAMES } from "./postfix_names.ts";
import { configProblems } from "./validate.ts";

/** A read-only view of one configuration. */
export interface Config {
  /** Absolute configuration directory. */
  readonly dir: string;
  /**
   * Problems that do not stop the program: duplicate definitions
   * ("main.cf, line N: overriding earlier entry: name=value"), unknown names
   * ("main.cf: unused parameter: X=value"), and settings Postwarden does not
   * implement but that are harmless to ignore (support.ts); the harmful ones
   * are errors of validateConfig.
   */
  readonly warnings: readonly string[];
  /** Unexpanded value: explicit setting or default; undefined if not in the table and not set. */
  raw(name: string): string | undefined;
  /** Fully expanded value. Throws ConfigError for a name neither set nor in PARAMS, or a bad expansion. */
  str(name: string): string;
  /**
   * Integer value; ConfigError "main.cf: bad numerical value for X: ..." when
   * not a number, "invalid X parameter value N < MIN" out of the table's range.
   */
  int(name: string): number;
  /**
   * Time in seconds; suffix s m h d w, a bare number is in the parameter's
   * timeUnit. Out of range: "invalid X: N (min MIN)", as Postfix.
   */
  time(name: string): number;
  /** Size in bytes (a non-negative integer, as Postfix: no suffixes), range-checked like int. */
  size(name: string): number;
  /** yes/no, case-insensitive. */
  bool(name: string): boolean;
  /** Expanded value split on whitespace and commas, empty items dropped. */
  list(name: string): string[];
  /** True when set in main.cf or by an override. */
  isSet(name: string): boolean;
  /** Explicit settings (main.cf, then overrides of names not in main.cf), in file order. */
  explicit(): Map<string, string>;
  /**
   * The text of a file named by a parameter value and read with the
   * configuration (myorigin, bounce_template_file: loadConfig), by its
   * absolute path; ConfigError when it could not be read or was not read.
   */
  fileText(path: string): string;
  /** Every file read with the configuration that could be read, by path (master hands them on). */
  readFiles(): Record<string, string>;
}

/** Options for makeConfig and loadConfig. */
export interface ConfigOptions {
  /** Settings that win over main.cf (like master.cf `-o name=value`). @default {} */
  overrides?: Record<string, string>;
  /**
   * Host name for the myhostname default. @default Deno.hostname() in
   * loadConfig (when permitted), "localhost" in makeConfig
   */
  hostname?: string;
  /**
   * Files named by parameter values, by absolute path: their text, or the
   * ConfigError that reading them gave. loadConfig fills it for `myorigin =
   * /path`. @default {}
   */
  files?: Readonly<Record<string, string | ConfigError>>;
  /** The running program, the default of the read-only process_name (master sets it for daemons). @default "" */
  processName?: string;
}

const TIME_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const KNOWN_POSTFIX = new Set(POSTFIX_NAMES);

/**
 * The mynetworks default when it is not set. Postfix computes it from every
 * interface per mynetworks_style; Postwarden does not read the interfaces
 * and trusts the loopback network only, a subset of what Postfix would
 * trust (support.ts warns that mynetworks is not set).
 */
function defaultMynetworks(style: string): string {
  return style.trim().toLowerCase() === "host" ? "127.0.0.1/32 [::1]/128" : "127.0.0.0/8 [::1]/128";
}

/**
 * The value of `myorigin = /path`: the file's first line without leading
 * and trailing white space, as Postfix's read_param_from_file.
 */
function originFromFile(path: string, files: ConfigOptions["files"]): string {
  const text = files?.[path];
  if (text === undefined) throw new ConfigError(`myorigin file ${path}: not read`);
  if (text instanceof ConfigError) throw text;
  const origin = text.split("\n", 1)[0].trim();
  if (origin === "") throw new ConfigError(`myorigin file ${path} is empty`);
  return origin;
}

/** The myhostname default: the host name, made fully qualified like Postfix does. */
function defaultHostname(hostname: string, mydomain: () => string | undefined): string {
  if (hostname.includes(".")) return hostname;
  return `${hostname}.${mydomain() ?? "localdomain"}`;
}

/** Build a Config from main.cf text. Pure: no I/O. Throws ConfigError on a syntax error. */
export function makeConfig(dir: string, mainCf: string, opts: ConfigOptions = {}): Config {
  const parsed = parseMainCf(mainCf);
  const settings = new Map(parsed.entries);
  for (const [name, value] of Object.entries(opts.overrides ?? {})) settings.set(name, value);
  const hostname = opts.hostname ?? "localhost";

  const lookup = (name: string): string | undefined => {
    const set = settings.get(name);
    if (set !== undefined) return set;
    switch (name) {
      case "myhostname":
        return defaultHostname(hostname, () => {
          const d = settings.get("mydomain");
          return d === undefined ? undefined : expand(d, lookup, { stack: ["myhostname"] });
        });
      case "mydomain": {
        const host = expand(lookup("myhostname") ?? "", lookup, { stack: ["mydomain"] });
        const dot = host.indexOf(".");
        return dot < 0 ? "localdomain" : host.slice(dot + 1);
      }
      case "config_directory":
        return dir;
      case "process_name":
        return opts.processName ?? "";
      case "mynetworks":
        return defaultMynetworks(
          expand(lookup("mynetworks_style") ?? "", lookup, { stack: ["mynetworks"] }),
        );
    }
    return PARAMS.get(name)?.default;
  };

  const warnings = [...parsed.warnings];
  const referenced = new Set<string>();
  for (const value of settings.values()) referencedNames(value).forEach((n) => referenced.add(n));
  for (const spec of PARAMS.values()) {
    referencedNames(spec.default).forEach((n) => referenced.add(n));
  }
  // smtpd_restriction_classes names parameters of the administrator's own.
  const classes = new Set((settings.get("smtpd_restriction_classes") ?? "").split(/[\s,]+/));
  for (const [name, value] of settings) {
    // Postfix names and per-transport settings are support.ts's to report.
    if (PARAMS.has(name) || KNOWN_POSTFIX.has(name) || isPerTransport(name)) continue;
    if (classes.has(name)) continue;
    if (!referenced.has(name)) warnings.push(`main.cf: unused parameter: ${name}=${value}`);
  }

  // The settings never change once made, and daemons read some parameters
  // per message: each value is expanded once.
  const expanded = new Map<string, string>();
  const str = (name: string): string => {
    let value = expanded.get(name);
    if (value === undefined) {
      value = expandedValue(name);
      expanded.set(name, value);
    }
    return value;
  };
  const expandedValue = (name: string): string => {
    const raw = lookup(name);
    if (raw === undefined) throw new ConfigError(`main.cf: unknown parameter: ${name}`);
    const value = expand(raw, lookup, { stack: [name] });
    if (name !== "myorigin") return value;
    const origin = value.startsWith("/") ? originFromFile(value, opts.files) : value;
    if (/[, \t\r\n]/.test(origin)) {
      throw new ConfigError(
        `myorigin parameter setting must not contain multiple values: ${origin}`,
      );
    }
    return origin;
  };
  const bad = (what: string, name: string, value: string) =>
    new ConfigError(`main.cf: bad ${what} value for ${name}: ${value}`);
  /** Postfix's range check of int and size parameters (mail_conf_int.c wording). */
  const inRange = (name: string, n: number): number => {
    const spec = PARAMS.get(name);
    if (spec?.min !== undefined && n < spec.min) {
      throw new ConfigError(`invalid ${name} parameter value ${n} < ${spec.min}`);
    }
    if (spec?.max !== undefined && n > spec.max) {
      throw new ConfigError(`invalid ${name} parameter value ${n} > ${spec.max}`);
    }
    return n;
  };

  const int = (name: string): number => {
    const v = str(name).trim();
    if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw bad("numerical", name, v);
    return inRange(name, Number(v));
  };

  const config: Config = {
    dir,
    warnings,
    raw: lookup,
    str,
    int,
    time(name) {
      const v = str(name).trim();
      const m = /^(\d+)([smhdw]?)$/.exec(v);
      if (!m) throw bad("time", name, v);
      const spec = PARAMS.get(name);
      const seconds = Number(m[1]) * TIME_UNITS[m[2] || spec?.timeUnit || "s"];
      // Postfix's range check of time parameters (mail_conf_time.c wording).
      if (spec?.min !== undefined && seconds < spec.min) {
        throw new ConfigError(`invalid ${name}: ${seconds} (min ${spec.min})`);
      }
      if (spec?.max !== undefined && seconds > spec.max) {
        throw new ConfigError(`invalid ${name}: ${seconds} (max ${spec.max})`);
      }
      return seconds;
    },
    size(name) {
      const v = str(name).trim();
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw bad("numerical", name, v);
      return inRange(name, Number(v));
    },
    bool(name) {
      const v = str(name).trim().toLowerCase();
      if (v === "yes") return true;
      if (v === "no") return false;
      throw bad("boolean", name, v);
    },
    list(name) {
      return str(name).split(/[\s,]+/).filter((item) => item !== "");
    },
    isSet: (name) => settings.has(name),
    explicit: () => new Map(settings),
    fileText: (path) => {
      const text = opts.files?.[path];
      if (text === undefined) throw new ConfigError(`${path}: not read with the configuration`);
      if (text instanceof ConfigError) throw text;
      return text;
    },
    readFiles: () =>
      Object.fromEntries(
        Object.entries(opts.files ?? {}).filter((e): e is [string, string] =>
          typeof e[1] === "string"
        ),
      ),
  };
  for (const p of configProblems(config)) if (!p.fatal) warnings.push(p.message);
  return config;
}

/**
 * Read `dir/main.cf` and build a Config. A missing main.cf is a ConfigError
 * naming the file. The host name defaults to Deno.hostname() when the
 * program may read it (--allow-sys=hostname). When myorigin names a file
 * (`myorigin = /etc/mailname`), that file is read too (--allow-read of it),
 * and so is bounce_template_file; a file that cannot be read is reported by
 * `str("myorigin")`, fileText() and validateConfig, not here, so that
 * programs that do not use it (postconf) are not stopped by it.
 */
export async function loadConfig(dir: string, opts: ConfigOptions = {}): Promise<Config> {
  const path = `${dir.replace(/\/+$/, "")}/main.cf`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ConfigError(`open ${path}: No such file or directory`);
    }
    throw new ConfigError(`open ${path}: ${(e as Error).message}`);
  }
  let hostname = opts.hostname;
  if (hostname === undefined) {
    try {
      hostname = Deno.hostname();
    } catch {
      hostname = undefined;
    }
  }
  const first = makeConfig(dir, text, { ...opts, hostname });
  const files: Record<string, string | ConfigError> = { ...opts.files };
  let read = false;
  for (const [name, path] of namedFiles(first)) {
    if (files[path] !== undefined) continue;
    read = true;
    try {
      files[path] = await Deno.readTextFile(path);
    } catch (e) {
      files[path] = new ConfigError(
        `${name === "myorigin" ? "myorigin file" : `${name}:`} ${path}: ${
          e instanceof Deno.errors.NotFound ? "No such file or directory" : (e as Error).message
        }`,
      );
    }
  }
  return read ? makeConfig(dir, text, { ...opts, hostname, files }) : first;
}

/**
 * The files whose text is part of the configuration, by parameter:
 * `myorigin = /path` and bounce_template_file (relative to the
 * configuration directory). A value that does not expand names no file
 * (str() and validateConfig report it).
 */
export function namedFiles(config: Config): [string, string][] {
  const out: [string, string][] = [];
  try {
    const origin = expand(config.raw("myorigin") ?? "", config.raw, { stack: ["myorigin"] });
    if (origin.startsWith("/")) out.push(["myorigin", origin]);
  } catch {
    // reported by str("myorigin")
  }
  try {
    const template = configPath(config, "bounce_template_file");
    if (template) out.push(["bounce_template_file", template]);
  } catch {
    // reported by str("bounce_template_file")
  }
  return out;
}

/**
 * The configuration directory: `-c DIR`, else MAIL_CONFIG, else the repo's
 * `conf/` directory. Always absolute (a relative path is resolved against
 * the current directory, which needs --allow-read for Deno.cwd()).
 */
export function configDirFrom(
  args: { c?: string },
  env: { MAIL_CONFIG?: string } = {},
): string {
  const dir = args.c || env.MAIL_CONFIG;
  if (!dir) return decodeURIComponent(new URL("../../conf", import.meta.url).pathname);
  return resolvePath(dir);
}

/**
 * A path parameter made absolute: a relative value is taken relative to the
 * configuration directory (Postfix requires absolute paths; Postwarden's
 * embedded conf uses `$config_directory/../var`). A trailing "/" (Maildir
 * style) is kept. Empty stays empty.
 */
export function configPath(config: Config, name: string): string {
  const v = config.str(name);
  if (!v) return "";
  const abs = resolvePath(config.dir, v);
  return v.endsWith("/") ? `${abs}/` : abs;
}
