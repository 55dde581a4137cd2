/**
 * The command attributes of a master.cf `pipe` service, as pipe(8) reads
 * them: `flags=`, `user=name[:group]`, `size=`, `eol=`, `null_sender=`,
 * `directory=` and, last, `argv=command args...`. Attribute names are
 * case-insensitive; `argv=` takes every argument after it (a `{ a b }`
 * group is one argument, master_cf.ts has already unwrapped it).
 *
 * Pure: no I/O. The user is kept as a name; the pipe daemon and master
 * look it up. What Postfix's pipe(8) knows and Postwarden does not build
 * (`chroot=`) is an error here, so a service using it does not start
 * rather than running its command somewhere else than configured.
 *
 * Used by lib/permissions (the program `--allow-run` names), by
 * lib/service/catalog.ts (what stops the start) and by daemons/pipe.
 *
 * @module
 */

/** A pipe service's attributes. */
export interface PipeAttributes {
  /** Message processing flags, each letter once (`BDFORXhqu.>`). */
  flags: Set<string>;
  /** user= login name. */
  user: string;
  /** user=name:group: the group name, or null for the user's own group. */
  group: string | null;
  /** size=: messages larger than this many bytes bounce; 0 = no limit. */
  sizeLimit: number;
  /** eol= with its escapes decoded. @default "\n" */
  eol: string;
  /** null_sender=: what `${sender}` and From_/Return-Path: show for "". @default "MAILER-DAEMON" */
  nullSender: string;
  /** directory=: working directory of the command; null = queue_directory. */
  directory: string | null;
  /**
   * argv=: the program and its arguments, macros unexpanded. A program
   * without "/" is looked for in /usr/bin then /bin ({@link programCandidates}).
   */
  argv: string[];
}

/** A pipe service's attributes are wrong; the service cannot run. */
export class PipeAttributeError extends Error {
  override readonly name = "PipeAttributeError";
}

/**
 * Macros pipe(8) has whose values Postwarden's queue file does not keep
 * (the SASL login, the client's port): refused rather than expanded to
 * nothing.
 */
const UNRECORDED_MACRO =
  /\$[{(]?(sasl_method|sasl_sender|sasl_username|client_port)(?![A-Za-z0-9_])/;

/** The flags pipe(8) documents; every one is built. */
export const PIPE_FLAGS = "BDFORXhqu.>";

/**
 * Parses the master.cf arguments of a pipe service.
 *
 * @throws {PipeAttributeError} for an unknown attribute or flag, a bad
 * size, chroot=, a missing user= or argv=, or a program that is neither
 * an absolute path nor a plain name (Postwarden's sandbox grants exactly
 * the program's files), or holds a macro.
 */
export function parsePipeAttributes(args: string[]): PipeAttributes {
  const out: PipeAttributes = {
    flags: new Set(),
    user: "",
    group: null,
    sizeLimit: 0,
    eol: "\n",
    nullSender: "MAILER-DAEMON",
    directory: null,
    argv: [],
  };
  let sawUser = false;
  let sawArgv = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq).toLowerCase() : "";
    const value = eq > 0 ? a.slice(eq + 1) : "";
    switch (name) {
      case "flags":
        for (const f of value) {
          if (!PIPE_FLAGS.includes(f)) throw new PipeAttributeError(`unknown flag: ${f}`);
          out.flags.add(f);
        }
        break;
      case "user": {
        const colon = value.indexOf(":");
        out.user = colon < 0 ? value : value.slice(0, colon);
        const group = colon < 0 ? "" : value.slice(colon + 1);
        out.group = group === "" ? null : group;
        if (out.user === "") throw new PipeAttributeError("user= attribute without a user name");
        sawUser = true;
        break;
      }
      case "directory":
        out.directory = value;
        break;
      case "chroot":
        throw new PipeAttributeError(
          "chroot= is not supported (the command runs in the pipe daemon's file system)",
        );
      case "eol":
        out.eol = unescape(value);
        break;
      case "null_sender":
        out.nullSender = value;
        break;
      case "size":
        if (!/^\d+$/.test(value)) throw new PipeAttributeError(`bad size= value: ${value}`);
        out.sizeLimit = Number(value);
        break;
      case "argv":
        out.argv = [value, ...args.slice(i + 1)];
        sawArgv = true;
        i = args.length;
        break;
      default:
        throw new PipeAttributeError(`unknown attribute name: ${a}`);
    }
  }
  if (!sawUser) throw new PipeAttributeError("missing user= command-line attribute");
  if (!sawArgv || out.argv[0] === "") {
    throw new PipeAttributeError("missing argv= command-line attribute");
  }
  const program = out.argv[0];
  if ((program.includes("/") && !program.startsWith("/")) || program.includes("$")) {
    throw new PipeAttributeError(
      `argv=${program}: the program must be an absolute path or a name in /usr/bin:/bin, ` +
        "without macros (its sandbox may run exactly those files)",
    );
  }
  for (const element of out.argv) {
    const m = UNRECORDED_MACRO.exec(element.replaceAll("$$", ""));
    if (m) {
      throw new PipeAttributeError(
        `argv: \${${m[1]}} is not supported (the queue file does not record it)`,
      );
    }
  }
  if (out.directory !== null && !out.directory.startsWith("/")) {
    throw new PipeAttributeError(`directory=${out.directory}: must be an absolute path`);
  }
  return out;
}

/** The command search path pipe(8) sets (_PATH_DEFPATH). */
export const PIPE_PATH = ["/usr/bin", "/bin"];

/**
 * Where the program may be: itself when absolute, else each PIPE_PATH
 * folder in order, as execvp() looks (the first that exists runs).
 */
export function programCandidates(program: string): string[] {
  return program.startsWith("/") ? [program] : PIPE_PATH.map((d) => `${d}/${program}`);
}

/**
 * The files a pipe service may run ({@link programCandidates} of argv[0]),
 * or none when its attributes do not parse (the start then stops on the
 * error).
 */
export function pipePrograms(args: string[]): string[] {
  try {
    return programCandidates(parsePipeAttributes(args).argv[0]);
  } catch {
    return [];
  }
}

/** C-style escapes as Postfix's unescape(): \a \b \f \n \r \t \v \ddd \\. */
export function unescape(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "\\" || i + 1 >= s.length) {
      out += s[i];
      continue;
    }
    const c = s[++i];
    const simple: Record<string, string> = {
      a: "\x07",
      b: "\b",
      f: "\f",
      n: "\n",
      r: "\r",
      t: "\t",
      v: "\v",
      "\\": "\\",
    };
    if (c in simple) out += simple[c];
    else if (/[0-7]/.test(c)) {
      let oct = c;
      while (oct.length < 3 && /[0-7]/.test(s[i + 1] ?? "")) oct += s[++i];
      out += String.fromCharCode(parseInt(oct, 8) & 0xff);
    } else out += c;
  }
  return out;
}
