/**
 * qmgr's connections to the delivery agents (private/<transport>): one
 * request and its reply per use, idle connections kept per transport and
 * reused for the next request while younger than Postfix's ipc_idle
 * (lib/ipc/idle.ts). A pooled connection found dead before the request is out (the
 * agent restarted) is replaced by a fresh one; once the request is out, a
 * failure goes to the caller, who defers or retries the recipients.
 */
import type { MasterService } from "../../lib/config/mod.ts";
import type { DeliveryRequest, DeliveryResult, RecipientStatus } from "../../lib/deliver/mod.ts";
import { type IpcConn, ipcConnect, IpcError } from "../../lib/ipc/mod.ts";
import { IdleConns } from "../../lib/ipc/idle.ts";

/** A transport that is not a unix service in master.cf. */
export class UnknownTransportError extends Error {
  override readonly name = "UnknownTransportError";
}

/** The pool; see the module comment. */
export class AgentPool {
  #idle = new IdleConns();

  constructor(
    readonly services: MasterService[],
    /** The socket path of a service, as the sandbox grants it. */
    readonly socketOf: (service: string) => string,
  ) {}

  /** Whether a transport is a unix service in master.cf. */
  has(transport: string): boolean {
    return this.services.some((s) => s.name === transport && s.type === "unix");
  }

  /**
   * Deliveries of a transport at once: its master.cf maxproc, or `fallback`
   * (default_process_limit) for "-", 0 or a service that is not there.
   */
  processLimit(transport: string, fallback: number): number {
    const svc = this.services.find((s) => s.name === transport && s.type === "unix");
    if (!svc || svc.raw?.maxproc === "-" || svc.maxproc <= 0) return fallback;
    return svc.maxproc;
  }

  /** Sends one request and returns the agent's statuses. */
  async request(transport: string, req: DeliveryRequest): Promise<RecipientStatus[]> {
    if (!this.has(transport)) {
      throw new UnknownTransportError(`transport "${transport}" is not defined in master.cf`);
    }
    let conn: IpcConn | undefined = this.#idle.take(transport);
    let res: DeliveryResult | null = null;
    if (conn) {
      try {
        await conn.send(req);
        res = await conn.recvMsg<DeliveryResult>();
      } catch (e) {
        conn.close();
        conn = undefined;
        // A connection closed while idle fails at once with no reply: retry
        // fresh. Anything else (a timeout) is a real failure.
        if (!(e instanceof IpcError) || e.timeout) throw e;
      }
    }
    if (!conn) {
      conn = await ipcConnect(this.socketOf(transport), { timeoutMs: 3_600_000 });
      try {
        await conn.send(req);
        res = await conn.recvMsg<DeliveryResult>();
      } catch (e) {
        conn.close();
        throw e;
      }
    }
    if (!res || !Array.isArray(res.recipients)) {
      conn.close();
      throw new Error("bad reply from delivery agent");
    }
    this.#idle.put(transport, conn);
    return res.recipients;
  }

  /** Closes every idle connection. */
  close(): void {
    this.#idle.close();
  }
}
