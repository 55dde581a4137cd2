/**
 * Which backend opens which table type, and what a daemon needs to open
 * it. One line per type; a type that Postwarden does not have is a clear
 * error naming it, never a table that silently finds nothing.
 *
 * @module
 */
import {
  type Dict,
  type DictBackend,
  DictError,
  type DictGrants,
  type DictOpenOptions,
  GRANT_KINDS,
  type GrantsContext,
  NETWORK_TYPES,
  noGrants,
  parseMapSpec,
  splitMapList,
} from "./dict.ts";
import { openEnviron, openFail, openInline, openStatic } from "./map_simple.ts";
import { nisBackend } from "./map_nis.ts";
import { unixBackend } from "./map_unix.ts";

/**
 * A backend, or how to load it: the larger ones (pattern translators, SQL
 * clients, the compiled-table reader) are imported when a table of their
 * type is first opened, so a daemon loads only the code of the tables it
 * uses.
 */
type Entry = DictBackend | (() => Promise<DictBackend>);

const BACKENDS: Record<string, Entry> = {
  inline: { open: openInline },
  static: { open: openStatic },
  fail: { open: openFail },
  environ: { open: openEnviron, grants: () => Promise.resolve({ env: ["*"] }) },
  unix: unixBackend(),
  nis: nisBackend(),
  texthash: async () => {
    const m = await import("./map_texthash.ts");
    return { open: m.openTexthash, grants: m.texthashGrants };
  },
  hash: async () => (await import("./map_hash.ts")).compiledBackend("hash"),
  btree: async () => (await import("./map_hash.ts")).compiledBackend("btree"),
  lmdb: async () => (await import("./map_hash.ts")).compiledBackend("lmdb"),
  cdb: async () => (await import("./map_hash.ts")).compiledBackend("cdb"),
  unionmap: async () =>
    (await import("./map_union.ts")).unionBackends(openDict, tableGrants).unionmap,
  pipemap: async () =>
    (await import("./map_union.ts")).unionBackends(openDict, tableGrants).pipemap,
  sqlite: async () => (await import("./map_sqlite.ts")).sqliteBackend,
  pgsql: async () => (await import("./map_pgsql.ts")).pgsqlBackend,
  mysql: async () => (await import("./map_mysql.ts")).mysqlBackend,
  socketmap: async () => (await import("./map_socketmap.ts")).socketmapBackend,
  tcp: async () => (await import("./map_tcp.ts")).tcpBackend,
  regexp: async () => (await import("./map_regexp.ts")).regexpBackend,
  pcre: async () => (await import("./map_pcre.ts")).pcreBackend,
  cidr: async () => (await import("./map_cidr.ts")).cidrBackend,
};

/** Table types Postwarden can open. */
export function supportedTypes(): string[] {
  return Object.keys(BACKENDS).sort();
}

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The backend of a table type, loaded when needed. */
async function backendOf(spec: string, context?: string): Promise<DictBackend> {
  const type = knownType(spec, context);
  const entry = BACKENDS[type];
  if (typeof entry === "function") BACKENDS[type] = await entry();
  return BACKENDS[type] as DictBackend;
}

/** The type of `type:name`, checked to be one Postwarden has. */
function knownType(spec: string, context?: string): string {
  const { type } = parseMapSpec(spec);
  // Own keys only: "constructor:x" or "__proto__:x" is no table type.
  if (!Object.hasOwn(BACKENDS, type) || BACKENDS[type] === undefined) {
    throw new DictError(
      `${context ? context + ": " : ""}table ${spec.trim()}: ` +
        `lookup table type "${type}" is not supported (supported: ${supportedTypes().join(", ")})`,
      "config",
    );
  }
  return type;
}

/**
 * Opens one `type:name` table (`proxy:` looked through).
 *
 * @throws {DictError} kind "config" for an unknown type or a bad table.
 */
export async function openDict(spec: string, opts: DictOpenOptions = {}): Promise<Dict> {
  const type = knownType(spec, opts.context);
  const { name, proxied } = parseMapSpec(spec);
  if (opts.proxy && (proxied || NETWORK_TYPES.has(type))) {
    return opts.proxy(`${type}:${name.trim()}`, opts.fold ?? true);
  }
  const backend = await backendOf(spec, opts.context);
  return await backend.open(name, {
    fold: opts.fold ?? true,
    utf8: opts.utf8 ?? true,
    warn: opts.warn ?? ((m) => console.warn(m)),
    env: opts.env ?? defaultEnv,
    context: opts.context ?? "",
  });
}

/**
 * What a daemon needs to open every table of a list value: the union of
 * each table's grants.
 *
 * @throws {DictError} kind "config" for an unknown type or a bad name.
 */
export async function tableGrants(value: string, ctx: GrantsContext): Promise<DictGrants> {
  const out = noGrants();
  for (const spec of splitMapList(value)) {
    const backend = await backendOf(spec);
    const g = await backend.grants?.(parseMapSpec(spec).name, ctx) ?? {};
    for (const k of GRANT_KINDS) {
      for (const item of g[k] ?? []) if (!out[k].includes(item)) out[k].push(item);
    }
  }
  return out;
}
