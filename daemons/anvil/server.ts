/**
 * anvil's request handling over lib/ipc: one JSON message per request,
 * `{ request, ident }`, answered `{ status: 0, ... }` as Postfix's anvil
 * protocol (request=connect gives count and rate; disconnect nothing;
 * message, recipient, newtls, auth and newtls_report give rate; lookup
 * gives everything). A malformed request is answered `{ status: 1 }` and
 * logged. Each IPC connection is one owner (state.ts): when it closes,
 * its connections are dropped.
 *
 * @module
 */
import type { IpcConn } from "../../lib/ipc/mod.ts";
import { AnvilState, type RateEvent } from "./state.ts";

/** Longest ident accepted ("service:address"; addresses are short). */
const MAX_IDENT = 512;

/** anvil's answer to one request. */
export type AnvilReply = { status: 0 | 1 } & Record<string, number>;

/** Answers one request against the state (no I/O). */
export function answer(
  state: AnvilState,
  owner: unknown,
  msg: Record<string, unknown>,
  now: number,
): AnvilReply {
  const { request, ident } = msg;
  if (typeof ident !== "string" || ident === "" || ident.length > MAX_IDENT) return { status: 1 };
  switch (request) {
    case "connect":
      return { status: 0, ...state.connect(owner, ident, now) };
    case "disconnect":
      state.disconnect(owner, ident, now);
      return { status: 0 };
    case "message":
    case "recipient":
    case "newtls":
    case "auth":
      return { status: 0, rate: state.event(request as RateEvent, ident, now) };
    case "newtls_report":
      return { status: 0, rate: state.newtlsReport(ident, now) };
    case "lookup":
      return { status: 0, ...state.lookup(ident, now) };
    default:
      return { status: 1 };
  }
}

/** Serves one client connection until it closes; then its connections are dropped. */
export async function serve(
  state: AnvilState,
  conn: IpcConn,
  opts: { now: () => number; warn: (m: string) => void },
): Promise<void> {
  try {
    for (;;) {
      const f = await conn.recv(24 * 3600 * 1000);
      if (f === null) return;
      if (f.kind !== "msg") {
        opts.warn("unexpected content frame from client; closing");
        return;
      }
      const reply = answer(state, conn, f.msg, opts.now());
      if (reply.status !== 0) {
        opts.warn(`bad request: ${JSON.stringify(f.msg).slice(0, 200)}`);
      }
      await conn.send(reply);
    }
  } finally {
    state.dropOwner(conn, opts.now());
  }
}
