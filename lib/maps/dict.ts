/**
 * The one lookup-table interface, like Postfix's DICT: every `type:name`
 * table (inline:, hash:, regexp:, pgsql:, ...) is a {@link Dict} that maps a
 * key to a value or to nothing. A table that cannot answer (database down,
 * file unreadable, bad pattern) throws {@link DictError}; callers turn that
 * into "try again later", never into "not found".
 *
 * Opening goes through {@link openDict}, which parses `type:name` and picks
 * the backend from the registry in registry.ts (`map_<type>.ts` files).
 * Search orders (which keys to try for an address or a domain) live in
 * search.ts; the list of tables a parameter names is a {@link Maps}
 * (maps.ts).
 *
 * @module
 */

/** Why a table could not answer. */
export type DictErrorKind =
  /** Temporary: the server or file could not be reached; try again later. */
  | "retry"
  /** The table is misconfigured (bad file, bad pattern, unknown type); also "try again later", logged as a configuration error. */
  | "config";

/** A lookup or open that failed; never means "not found". */
export class DictError extends Error {
  override readonly name = "DictError";
  constructor(message: string, readonly kind: DictErrorKind = "retry") {
    super(message);
  }
}

/** One open lookup table. */
export interface Dict {
  /** Table type as written: "hash", "regexp", "inline", ... (after `proxy:`). */
  readonly type: string;
  /** The rest of `type:name`: a path, `{...}` text, a config file. */
  readonly name: string;
  /**
   * Pattern tables (regexp, pcre, cidr, and tables that match on the key's
   * form rather than its exact text) get only full keys: search orders do
   * not ask them for a partial key such as "user" or "@domain" (Postfix's
   * DICT_FLAG_PATTERN versus DICT_FLAG_FIXED).
   */
  readonly pattern: boolean;
  /**
   * The value for key, or undefined when there is none. The key is passed
   * as the caller has it; a fixed-string table folds it to lower case
   * itself when opened with `fold` (Postfix's DICT_FLAG_FOLD_FIX).
   *
   * @throws {DictError} when the table cannot answer.
   */
  lookup(key: string): Promise<string | undefined>;
  /** Releases files and connections. */
  close(): Promise<void>;
}

/** Options for opening a table. */
export interface DictOpenOptions {
  /**
   * Fold the key of a fixed-string table to lower case before lookup, and
   * keys of a table built from text (inline:, texthash:) when loading it.
   * Postfix opens every table this way except where `postmap -f` says
   * otherwise. @default true
   */
  fold?: boolean;
  /**
   * Fold with full Unicode case folding (Postfix with smtputf8_enable=yes,
   * the default from compatibility_level 1); false folds ASCII letters
   * only, as Postfix without SMTPUTF8. @default true
   */
  utf8?: boolean;
  /**
   * Where warnings go (malformed table lines, an index older than its
   * source), worded as Postfix's. @default console.warn
   */
  warn?: (message: string) => void;
  /**
   * Environment for `environ:` tables and `pipemap`'s children.
   * @default Deno.env when permitted
   */
  env?: (name: string) => string | undefined;
  /**
   * The parameter or context the table was named in, for messages
   * ("virtual_alias_maps: ..."). @default ""
   */
  context?: string;
  /**
   * Opens a table through proxymap (proxy_client.ts). When given, tables
   * written `proxy:type:name` and every table that needs the network
   * ({@link NETWORK_TYPES}) are opened with it instead of directly.
   * Without it `proxy:` is looked through. @default undefined
   */
  proxy?: (spec: string, fold: boolean) => Dict;
}

/**
 * Table types that talk to a server. A daemon never opens them itself: they
 * are looked up through proxymap, the one daemon with network access (and
 * the database drivers) for tables.
 */
export const NETWORK_TYPES: ReadonlySet<string> = new Set([
  "pgsql",
  "mysql",
  "socketmap",
  "tcp",
]);

/** A backend: opens one table of its type. `name` is the text after "type:". */
export type DictOpener = (name: string, opts: DictOpenContext) => Promise<Dict>;

/** The options a backend opens a table with: every option decided, no proxy. */
export type DictOpenContext = Required<Omit<DictOpenOptions, "proxy">>;

/**
 * What a daemon that opens a table needs from its sandbox, computed from
 * the table name (and, for SQL and socketmap tables, the files it names):
 * exactly these paths, hosts and programs, nothing more.
 */
export interface DictGrants {
  /** Files read (the compiled index, a regexp file, a pgsql.cf). */
  read: string[];
  /** Files written (none for lookups; listed for completeness). */
  write: string[];
  /** `host:port` to connect to (SQL servers, socketmap/tcp servers); UNIX socket paths go in read and write. */
  net: string[];
  /** Programs run. */
  run: string[];
  /** Environment variables read. */
  env: string[];
  /**
   * npm modules the table's driver imports, by their name in deno.json
   * "imports" (pgsql: "postgres"). Only proxymap may load npm code, and
   * only when a table it serves lists some (lib/permissions).
   */
  npm: string[];
}

/** The kinds of {@link DictGrants}, for code that merges them. */
export const GRANT_KINDS = ["read", "write", "net", "run", "env", "npm"] as const;

/** The empty grant set. */
export function noGrants(): DictGrants {
  return { read: [], write: [], net: [], run: [], env: [], npm: [] };
}

/** How a backend learns what its table names: reads files with the caller's rights. */
export interface GrantsContext {
  readTextFile(path: string): Promise<string>;
}

/** One table type: how to open it and what a daemon needs to. */
export interface DictBackend {
  open: DictOpener;
  /** The sandbox grants for a table `type:name` of this type. @default none */
  grants?: (name: string, ctx: GrantsContext) => Promise<Partial<DictGrants>>;
}

/** `type:name` split; `proxy:` prefixes are looked through and reported. */
export interface MapSpec {
  type: string;
  name: string;
  /** The spec named `proxy:` (lookups could go through proxymap). */
  proxied: boolean;
}

/**
 * Splits "type:name" as Postfix does (at the first ":"), looking through
 * `proxy:`. The name keeps its braces for `inline:{...}` and friends.
 *
 * @throws {DictError} (kind "config") without a ":" or with an empty type.
 */
export function parseMapSpec(spec: string): MapSpec {
  let rest = spec.trim();
  let proxied = false;
  while (rest.toLowerCase().startsWith("proxy:")) {
    proxied = true;
    rest = rest.slice("proxy:".length);
  }
  const colon = rest.indexOf(":");
  if (colon <= 0) {
    throw new DictError(`table ${spec}: need "type:name"`, "config");
  }
  return { type: rest.slice(0, colon).toLowerCase(), name: rest.slice(colon + 1), proxied };
}

/**
 * Splits a list of table names as Postfix's mystrtokq does for map lists:
 * on white space and commas, except inside `{...}` (so
 * `inline:{a=b, c=d}, hash:/etc/x` is two items).
 *
 * @throws {DictError} (kind "config") on unbalanced braces.
 */
export function splitMapList(value: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = -1;
  for (let i = 0; i <= value.length; i++) {
    const c = i < value.length ? value[i] : ",";
    const sep = depth === 0 && (c === "," || c === " " || c === "\t" || c === "\n" || c === "\r");
    if (sep) {
      if (start >= 0) items.push(value.slice(start, i));
      start = -1;
      continue;
    }
    if (start < 0) start = i;
    if (c === "{") depth++;
    else if (c === "}") {
      if (depth === 0) throw new DictError(`unbalanced "}" in "${value.trim()}"`, "config");
      depth--;
    }
  }
  if (depth !== 0) throw new DictError(`unbalanced "{" in "${value.trim()}"`, "config");
  return items;
}

/**
 * The text inside `{...}` as Postfix's extpar: the braces removed and the
 * inside trimmed. Text without braces is returned trimmed.
 *
 * @throws {DictError} (kind "config") when the braces do not close at the end.
 */
export function braced(text: string, what: string): string {
  const t = text.trim();
  if (!t.startsWith("{")) return t;
  if (!t.endsWith("}")) throw new DictError(`${what}: missing "}" in "${t}"`, "config");
  return t.slice(1, -1).trim();
}

/**
 * Splits the inside of `{a, b, { c d }}` into items on commas and white
 * space, keeping `{...}` groups whole and removing their outer braces, as
 * Postfix does for inline:, unionmap: and pipemap: names.
 */
export function bracedItems(inner: string): string[] {
  return splitMapList(inner).map((item) => {
    const t = item.trim();
    return t.startsWith("{") && t.endsWith("}") ? t.slice(1, -1).trim() : t;
  });
}
