/**
 * The proxymap service logic: answers other daemons' lookups in the tables
 * the configuration names with `proxy:` or of a network type (SQL,
 * socketmap, tcp), so that those daemons need no file, password, driver or
 * network permission for them.
 *
 * Only tables the configuration names are opened (permissions/tables.ts
 * proxiedTables, the role of Postfix's proxy_read_maps): a daemon that asks
 * for anything else gets a "config" error and a warning is logged, so a
 * compromised smtpd cannot turn proxymap into a reader of other files.
 * Each table is opened once per process and kept open. Requests on a
 * connection are looked up concurrently and answered in order (clients
 * pipeline).
 *
 * Parameters: the table parameters of every daemon (lib/permissions
 * TABLE_PARAMS, LIST_PARAMS).
 */
import type { IpcConn } from "../../lib/ipc/mod.ts";
import {
  type Dict,
  DictError,
  openDict,
  type ProxyReply,
  type ProxyRequest,
} from "../../lib/maps/mod.ts";
import { proxiedTables } from "../../lib/permissions/mod.ts";
import { paramLookup } from "../../lib/service/catalog.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";

/** How long an idle client connection is kept. */
const IDLE_MS = 300_000;
/** Lookups one client connection may have in progress at once. */
const MAX_IN_FLIGHT = 64;

/** The tables of one proxymap process. */
export class ProxyTables {
  readonly allowed: ReadonlySet<string>;
  #open = new Map<string, Promise<Dict>>();

  constructor(readonly ctx: ServiceContext) {
    this.allowed = new Set(proxiedTables(paramLookup(ctx.config)));
  }

  /** The answer to one request. */
  async answer(req: ProxyRequest): Promise<ProxyReply> {
    if (req?.op !== "lookup" || typeof req.table !== "string" || typeof req.key !== "string") {
      return { status: "config", text: "malformed request" };
    }
    if (!this.allowed.has(req.table)) {
      this.ctx.log.warn(`request for unapproved table: "${req.table}"`);
      return { status: "config", text: `table ${req.table} is not named in the configuration` };
    }
    const fold = req.fold !== false;
    const id = `${fold ? "f" : "n"}:${req.table}`;
    let dict = this.#open.get(id);
    if (!dict) {
      dict = openDict(req.table, { fold, warn: (m) => this.ctx.log.warn(m) });
      dict.catch(() => this.#open.delete(id));
      this.#open.set(id, dict);
    }
    try {
      const value = await (await dict).lookup(req.key);
      return value === undefined ? { status: "notfound" } : { status: "ok", value };
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
      this.ctx.log.warn(`${req.table}: ${e.message}`);
      return { status: e.kind, text: `${req.table}: ${e.message}` };
    }
  }

  /**
   * Serves one client connection until it closes or idles out. Requests
   * are looked up as they arrive (up to {@link MAX_IN_FLIGHT} at once, so
   * a client's lookups overlap in a database driver that pipelines) and
   * answered in the order they came, as the client expects.
   */
  async serve(conn: IpcConn): Promise<void> {
    let tail: Promise<void> = Promise.resolve();
    let inFlight = 0;
    const failed: { error?: unknown; yes?: boolean } = {};
    for (;;) {
      if (failed.yes) break;
      if (inFlight >= MAX_IN_FLIGHT) await tail;
      let req: ProxyRequest;
      try {
        req = await conn.recvMsg<ProxyRequest>(IDLE_MS);
      } catch {
        break; // closed, idle or malformed: the client reconnects
      }
      inFlight++;
      const answer = this.answer(req);
      answer.catch(() => {}); // observed in order below
      tail = tail.then(async () => {
        if (!failed.yes) await conn.send(await answer);
      }).catch((error) => {
        // A failed send or lookup ends the connection (the client retries),
        // also waking the read above.
        if (!failed.yes) Object.assign(failed, { error, yes: true });
        conn.close();
      }).finally(() => inFlight--);
    }
    await tail;
    if (failed.yes) throw failed.error;
  }

  /** Closes every table. */
  async close(): Promise<void> {
    const dicts = await Promise.allSettled(this.#open.values());
    for (const d of dicts) if (d.status === "fulfilled") await d.value.close();
  }
}
