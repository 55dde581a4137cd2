/**
 * One postscreen connection, as Postfix's postscreen(8) screens it before
 * smtpd sees it:
 *
 * 1. postscreen_access_list: permit (ALLOWLISTED: straight to smtpd),
 *    reject (DENYLISTED: postscreen_denylist_action), or on.
 * 2. A client whose tests all passed within their time to live (the
 *    cache) goes to smtpd at once (PASS OLD).
 * 3. Otherwise the tests before the greeting: postscreen sends the first
 *    line of a multi-line greeting ("220-banner") and waits
 *    postscreen_greet_wait. A client that talks in that time fails the
 *    greeting test (PREGREET); meanwhile the postscreen_dnsbl_sites are
 *    asked and their weights added up (DNSBL rank N). A score at or
 *    below postscreen_dnsbl_allowlist_threshold passes the client at once.
 * 4. Failed: the test's action. ignore: on as if passed (not remembered);
 *    enforce: postscreen answers the client itself and refuses every
 *    recipient (550, logged as NOQUEUE: reject: RCPT ...), so its sender
 *    learns why; drop: 521 and the connection ends.
 *    Passed: remembered (PASS NEW) and handed to smtpd, whose "220 " line
 *    completes the greeting postscreen began.
 *
 * The tests after the greeting (pipelining, non-SMTP command, bare
 * newline) are not implemented: enabling one stops the start.
 *
 * No I/O but through {@link ScreenDeps} and the {@link ChunkReader}.
 *
 * @module
 */
import type { ScreenCache } from "./cache.ts";
import type { ScreenAction, ScreenSettings } from "./settings.ts";

/** A connection's bytes, chunk by chunk, with waits that leave nothing behind. */
export class ChunkReader {
  #pending: Promise<Uint8Array | null> | null = null;

  constructor(readonly read: () => Promise<Uint8Array | null>) {}

  /** The next chunk, null at the end, or "timeout"; a read still running is kept for later. */
  async next(timeoutMs: number): Promise<Uint8Array | null | "timeout"> {
    this.#pending ??= this.read().catch(() => null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      this.#pending,
      new Promise<"timeout">((res) => timer = setTimeout(() => res("timeout"), timeoutMs)),
    ]);
    clearTimeout(timer);
    if (r !== "timeout") this.#pending = null;
    return r;
  }

  /** The read in flight, if any (the hand-off continues with it). */
  takePending(): Promise<Uint8Array | null> | null {
    const p = this.#pending;
    this.#pending = null;
    return p;
  }
}

/** What a DNSBL check found. */
export interface DnsblScore {
  score: number;
  /** The sites that listed the client, heaviest first. */
  listedBy: string[];
}

/** What one screening needs. */
export interface ScreenDeps {
  settings: ScreenSettings;
  cache: ScreenCache;
  /** The postscreen_dnsbl_sites score of an address (within postscreen_dnsbl_timeout). */
  dnsbl: (addr: string) => Promise<DnsblScore>;
  /** postscreen_access_list for an address. */
  access: (addr: string) => Promise<"permit" | "reject" | null>;
  info: (msg: string) => void;
  myhostname: string;
  now: () => number;
}

/** How a screening ended: hand the client to smtpd (with what it already sent), or not. */
export type ScreenOutcome =
  | { kind: "pass"; early: Uint8Array[] }
  | { kind: "done" };

const dec = new TextDecoder("latin1");

/** A test that failed, with the replies its action gives. */
interface Failure {
  action: ScreenAction;
  /** Reply to RCPT under enforce. */
  enforce: string;
  /** Reply before hanging up under drop. */
  drop: string;
}

/** Screens one client; `write` sends to it. */
export async function screen(
  client: { addr: string; port: number },
  reader: ChunkReader,
  write: (s: string) => Promise<void>,
  d: ScreenDeps,
): Promise<ScreenOutcome> {
  const s = d.settings;
  const who = `[${client.addr}]:${client.port}`;
  const access = await d.access(client.addr);
  if (access === "permit") {
    d.info(`ALLOWLISTED ${who}`);
    return { kind: "pass", early: [] };
  }
  if (access === "reject") {
    d.info(`DENYLISTED ${who}`);
    const f: Failure = {
      action: s.denylistAction,
      enforce: "550 5.7.1 Service unavailable; client [" + client.addr + "] is denylisted",
      drop: "521 5.7.1 Service unavailable; client [" + client.addr + "] is denylisted",
    };
    if (f.action !== "ignore") return await refuse(f, who, [], reader, write, d);
  }
  const now = d.now();
  const cached = await d.cache.get(client.addr);
  const dnsblNeeded = s.dnsblSites.length > 0;
  if (cached && cached.greet > now && (!dnsblNeeded || cached.dnsbl > now)) {
    d.info(`PASS OLD ${who}`);
    return { kind: "pass", early: [] };
  }

  // The tests before the greeting: the first greeting line, then wait and listen.
  await write(`220-${s.banner}\r\n`);
  const started = d.now();
  let allowlisted = false;
  const dnsbl = dnsblNeeded
    ? d.dnsbl(client.addr).then((r) => {
      const t = s.dnsblAllowlistThreshold;
      if (t !== null && r.score <= t && r.score < 0) allowlisted = true;
      return r;
    })
    : Promise.resolve({ score: 0, listedBy: [] });
  const early: Uint8Array[] = [];
  let hangup = false;
  const deadline = started + s.greetWaitMs;
  // Wait out the greeting time, unless a DNS allow list vouches for the client first.
  const vouched = dnsbl.then(() => allowlisted);
  while (d.now() < deadline && early.length === 0) {
    const left = deadline - d.now();
    const r = await Promise.race([
      reader.next(left),
      vouched.then((ok) => ok ? "vouched" as const : new Promise<never>(() => {})),
    ]);
    if (r === "vouched" || r === "timeout") break;
    if (r === null) {
      hangup = true;
      break;
    }
    early.push(r);
  }
  if (hangup) {
    d.info(
      `HANGUP after ${
        ((d.now() - started) / 1000).toFixed(1)
      } from ${who} in tests before SMTP handshake`,
    );
    d.info(`DISCONNECT ${who}`);
    return { kind: "done" };
  }
  const score = await dnsbl;
  if (allowlisted) {
    d.info(`DNSBL rank ${score.score} for ${who}`);
    d.info(`PASS NEW ${who}`);
    await remember(client.addr, d);
    return { kind: "pass", early };
  }
  const failures: Failure[] = [];
  if (early.length > 0) {
    const text = dec.decode(early[0]).slice(0, 100).replace(/\r/g, "\\r").replace(/\n/g, "\\n");
    d.info(
      `PREGREET ${early.reduce((n, b) => n + b.length, 0)} after ${
        ((d.now() - started) / 1000).toFixed(2)
      } from ${who}: ${text}`,
    );
    failures.push({
      action: s.greetAction,
      enforce: "550 5.5.1 Protocol error",
      drop: "521 5.5.1 Protocol error",
    });
  }
  if (dnsblNeeded && score.score >= s.dnsblThreshold) {
    d.info(`DNSBL rank ${score.score} for ${who}`);
    const site = score.listedBy[0] ?? "";
    failures.push({
      action: s.dnsblAction,
      enforce: `550 5.7.1 Service unavailable; client [${client.addr}] blocked using ${site}`,
      drop: `521 5.7.1 Service unavailable; client [${client.addr}] blocked using ${site}`,
    });
  }
  // The strictest action of the failed tests applies.
  const worst = failures.find((f) => f.action === "drop") ??
    failures.find((f) => f.action === "enforce");
  if (worst) return await refuse(worst, who, early, reader, write, d);
  if (failures.length === 0) {
    d.info(`PASS NEW ${who}`);
    await remember(client.addr, d);
  }
  return { kind: "pass", early };
}

async function remember(addr: string, d: ScreenDeps): Promise<void> {
  const now = d.now();
  const s = d.settings;
  await d.cache.put(addr, {
    greet: now + s.greetTtlMs,
    dnsbl: s.dnsblSites.length ? now + s.dnsblTtlMs : now + s.greetTtlMs,
  });
}

/**
 * A failed client: dropped (521), or answered by postscreen itself with
 * every recipient refused (enforce), as Postfix's dummy SMTP engine does.
 */
async function refuse(
  f: Failure,
  who: string,
  early: Uint8Array[],
  reader: ChunkReader,
  write: (s: string) => Promise<void>,
  d: ScreenDeps,
): Promise<ScreenOutcome> {
  const s = d.settings;
  if (f.action === "drop") {
    await write(`${f.drop}\r\n`).catch(() => {});
    d.info(`DISCONNECT ${who}`);
    return { kind: "done" };
  }
  // Ends the greeting begun before the tests (or is the whole of it).
  await write(`220 ${s.banner}\r\n`);
  let buffered = early.map((b) => dec.decode(b)).join("");
  let helo = "";
  let sender: string | null = null;
  let commands = 0;
  for (;;) {
    const eol = buffered.indexOf("\n");
    if (eol < 0) {
      if (buffered.length > 4096) break;
      const r = await reader.next(s.commandTimeLimitMs);
      if (r === null || r === "timeout") break;
      buffered += dec.decode(r);
      continue;
    }
    const line = buffered.slice(0, eol).replace(/\r$/, "");
    buffered = buffered.slice(eol + 1);
    if (++commands > s.commandCountLimit) {
      await write(`421 4.7.0 ${d.myhostname} Error: too many commands\r\n`);
      break;
    }
    const verb = line.split(" ", 1)[0].toUpperCase();
    const arg = line.slice(verb.length).trim();
    if (verb === "EHLO") {
      helo = arg;
      await write(`250-${d.myhostname}\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n`);
    } else if (verb === "HELO") {
      helo = arg;
      await write(`250 ${d.myhostname}\r\n`);
    } else if (verb === "MAIL") {
      sender = /<([^>]*)>/.exec(arg)?.[1] ?? "";
      await write("250 2.1.0 Ok\r\n");
    } else if (verb === "RCPT") {
      const rcpt = /<([^>]*)>/.exec(arg)?.[1] ?? "";
      d.info(
        `NOQUEUE: reject: RCPT from ${who}: ${f.enforce}; from=<${sender ?? ""}>, ` +
          `to=<${rcpt}>, proto=ESMTP, helo=<${helo}>`.replace(/\p{Cc}/gu, "?"),
      );
      await write(`${f.enforce}\r\n`);
    } else if (verb === "DATA" || verb === "BDAT") {
      await write("554 5.5.1 Error: no valid recipients\r\n");
    } else if (verb === "RSET" || verb === "NOOP") {
      if (verb === "RSET") sender = null;
      await write("250 2.0.0 Ok\r\n");
    } else if (verb === "QUIT") {
      await write("221 2.0.0 Bye\r\n");
      break;
    } else {
      await write("502 5.5.2 Error: command not recognized\r\n");
    }
  }
  d.info(`DISCONNECT ${who}`);
  return { kind: "done" };
}
