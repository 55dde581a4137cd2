/**
 * What the ephemeral instance did with a test's mail, read from its log
 * the way an admin reads Postfix's: the test's own messages (the queue ids
 * of its "250 ... queued as ID" replies), the messages they caused (bounce
 * and delay notifications, mail local forwarded), what cleanup queued for
 * each (postwarden_capture's "capture: to=<..>" lines), and the agents'
 * status lines (`ID: to=<..>, orig_to=<..>, relay=.., dsn=.., status=..
 * (..)`).
 *
 * A message is settled when qmgr removed it, or it waits in the deferred
 * or hold queue, or (discarded) it never reached the queue.
 *
 * @module
 */

/** One delivery agent's (or qmgr's) status line. */
export interface StatusLine {
  id: string;
  to: string;
  /** orig_to, when the log has one. */
  origTo?: string;
  relay: string;
  dsn: string;
  /** sent, bounced, deferred, expired, ... */
  status: string;
  /** The text in parentheses after the status. */
  text: string;
}

/** A recipient cleanup queued. */
export interface QueuedRecipient {
  id: string;
  rcpt: string;
  held: boolean;
  /** Of one of the test's own messages (not a notification or forwarded copy). */
  own: boolean;
}

/** What came of a test's messages. */
export interface Outcome {
  /** The test's messages and those they caused, in the order found. */
  ids: string[];
  queued: QueuedRecipient[];
  statuses: StatusLine[];
  /** Ids with a "discard:" line (a header, body or access check's DISCARD). */
  discarded: string[];
  /** Ids not settled yet. */
  pending: string[];
}

/** The queue folder a message's file is in, or null when it has none. */
export type Where = (id: string) => string | null;

/** A log line without its "date host program[pid]: " prefix. */
export function logText(line: string): string {
  return line.replace(/^.*?\]: /, "");
}

/** Parses a status line (its text after the program prefix); null for other lines. */
export function parseStatus(text: string): StatusLine | null {
  const m =
    /^(\w+): to=<(.*?)>(?:, orig_to=<(.*?)>)?, relay=([^,]*), .*?dsn=([\d.]+), status=(\S+)(?: \((.*)\))?$/
      .exec(text);
  if (!m) return null;
  return {
    id: m[1],
    to: m[2],
    ...(m[3] !== undefined ? { origTo: m[3] } : {}),
    relay: m[4],
    dsn: m[5],
    status: m[6].replace(/,$/, ""),
    text: m[7] ?? "",
  };
}

/** The outcome of the messages `own` (and what they caused) in `lines` (log texts). */
export function outcomeOf(lines: string[], own: string[], where: Where): Outcome {
  const ids = [...own];
  const known = new Set(own);
  const add = (id: string) => {
    if (!known.has(id)) {
      known.add(id);
      ids.push(id);
    }
  };
  const queued: QueuedRecipient[] = [];
  const statuses: StatusLine[] = [];
  const discarded: string[] = [];
  const removed = new Set<string>();
  // A message's lines may come before the line that names it (a bounce's
  // cleanup logs before qmgr logs "notification: ID"): two passes.
  for (let pass = 0; pass < 2; pass++) {
    for (const line of lines) {
      const id = /^(\w+): /.exec(line)?.[1];
      if (!id || !known.has(id)) continue;
      const caused = /notification: (\w+)$/.exec(line)?.[1] ??
        /\(forwarded as (\w+)\)$/.exec(line)?.[1];
      if (caused) add(caused);
    }
  }
  for (const line of lines) {
    const id = /^(\w+): /.exec(line)?.[1];
    if (!id || !known.has(id)) continue;
    const c = /^\w+: capture: to=<(.*?)>(, held)?$/.exec(line);
    if (c) {
      queued.push({ id, rcpt: c[1], held: c[2] !== undefined, own: own.includes(id) });
      continue;
    }
    if (/^\w+: removed$/.test(line)) removed.add(id);
    else if (/^\w+: discard: /.test(line)) discarded.push(id);
    else {
      const st = parseStatus(line);
      if (st) statuses.push(st);
    }
  }
  const pending = ids.filter((id) => {
    if (removed.has(id)) return false;
    const folder = where(id);
    if (folder === "deferred" || folder === "hold") return false;
    // Never queued (discarded, or refused after the reply): nothing will come of it.
    return folder !== null || queued.some((q) => q.id === id);
  });
  return { ids, queued, statuses, discarded, pending };
}

/** True when `rcpt` names the status line's recipient: its final or its original address. */
export function statusFor(st: StatusLine, rcpt: string): boolean {
  const r = rcpt.toLowerCase();
  return st.to.toLowerCase() === r || st.origTo?.toLowerCase() === r;
}

/** A status line as `--record` and `--explain` show it. */
export function statusSummary(st: StatusLine): string {
  const orig = st.origTo ? ` (for <${st.origTo}>)` : "";
  return `<${st.to}>${orig}: ${st.status} via ${st.relay} (${st.dsn} ${st.text})`;
}

/** Whether a relay= value names a server (host[addr]:port, host[path]) rather than an agent. */
export function isServer(relay: string): boolean {
  return relay.includes("[");
}
