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
import { compiledBackend } from "./map_hash.ts";
import { openEnviron, openFail, openInline, openStatic } from "./map_simple.ts";
import { openTexthash, texthashGrants } from "./map_texthash.ts";
import { unionBackends } from "./map_union.ts";
import { nisBackend } from "./map_nis.ts";
import { unixBackend } from "./map_unix.ts";
import { mysqlBackend } from "./map_mysql.ts";
import { pgsqlBackend } from "./map_pgsql.ts";
import { socketmapBackend } from "./map_socketmap.ts";
import { sqliteBackend } from "./map_sqlite.ts";
import { tcpBackend } from "./map_tcp.ts";
import { cidrBackend } from "./map_cidr.ts";
import { pcreBackend } from "./map_pcre.ts";
import { regexpBackend } from "./map_regexp.ts";

const UNION = unionBackends(openDict, tableGrants);

const BACKENDS: Record<string, DictBackend> = {
  inline: { open: openInline },
  static: { open: openStatic },
  fail: { open: openFail },
  environ: { open: openEnviron, grants: () => Promise.resolve({ env: ["*"] }) },
  unix: unixBackend(),
  nis: nisBackend(),
  texthash: { open: openTexthash, grants: texthashGrants },
  hash: compiledBackend("hash"),
  btree: compiledBackend("btree"),
  lmdb: compiledBackend("lmdb"),
  cdb: compiledBackend("cdb"),
  unionmap: UNION.unionmap,
  pipemap: UNION.pipemap,
  sqlite: sqliteBackend,
  pgsql: pgsqlBackend,
  mysql: mysqlBackend,
  socketmap: socketmapBackend,
  tcp: tcpBackend,
  regexp: regexpBackend,
  pcre: pcreBackend,
  cidr: cidrBackend,
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

function backendOf(spec: string, context?: string): DictBackend {
  const { type } = parseMapSpec(spec);
  const backend = BACKENDS[type];
  if (backend === undefined) {
    throw new DictError(
      `${context ? context + ": " : ""}table ${spec.trim()}: ` +
        `lookup table type "${type}" is not supported (supported: ${supportedTypes().join(", ")})`,
      "config",
    );
  }
  return backend;
}

/**
 * Opens one `type:name` table (`proxy:` looked through).
 *
 * @throws {DictError} kind "config" for an unknown type or a bad table.
 */
export async function openDict(spec: string, opts: DictOpenOptions = {}): Promise<Dict> {
  const backend = backendOf(spec, opts.context);
  const { type, name, proxied } = parseMapSpec(spec);
  if (opts.proxy && (proxied || NETWORK_TYPES.has(type))) {
    return opts.proxy(`${type}:${name.trim()}`, opts.fold ?? true);
  }
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
    const backend = backendOf(spec);
    const g = await backend.grants?.(parseMapSpec(spec).name, ctx) ?? {};
    for (const k of GRANT_KINDS) {
      for (const item of g[k] ?? []) if (!out[k].includes(item)) out[k].push(item);
    }
  }
  return out;
}
