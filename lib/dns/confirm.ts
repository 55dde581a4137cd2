/**
 * Confirms a negative DNS answer over TCP. Deno.resolveDns reports
 * NXDOMAIN, "no data of this type" (NOERROR with an empty answer) and
 * SERVFAIL alike as NotFound, but mail must tell them apart: the first two
 * are permanent, SERVFAIL is temporary (Postfix's DNS_NOTFOUND versus
 * DNS_RETRY). {@link confirmNegative} asks the same question once more, over
 * TCP (which RFC 7766 requires every resolver to answer), to the name
 * servers of resolv.conf (or the one given), and reads the response code.
 *
 * TCP, not UDP: a daemon that may query its resolver already holds
 * `--allow-net=<nameserver>:53` (lib/permissions nameserverGrants), which
 * covers a TCP connection to it; a UDP socket of our own would need a bind
 * grant (`0.0.0.0:0`) on top.
 *
 * The name is asked as given (absolute): no search list, as Postfix asks
 * mail names (its dns_lookup in smtp and smtpd sets no RES_DNSRCH). Each
 * name server is tried in turn, `options attempts:` rounds, each try bounded
 * by `options timeout:` (glibc's defaults 5 s and 2, limits 30 s and 5) and
 * by the caller's deadline. SERVFAIL, REFUSED and other codes move on to
 * the next server, as glibc's res_send does; NXDOMAIN and NOERROR end the
 * search. A server that refuses the connection is not tried again.
 *
 * Reads /etc/resolv.conf (the daemon needs `--allow-read` on it) at each
 * confirmation, so an edited file counts at once. Does no caching
 * (cache.ts does, with the TTLs this returns).
 *
 * @module
 */
import {
  decodeMessage,
  type DnsMessage,
  type DnsRecord,
  encodeQuery,
  type QueryOptions,
  RCODE,
  RR_TYPES,
  type RrType,
  writeFramed,
} from "./wire.ts";

/** What resolv.conf says about where and how to ask. */
export interface ResolvConf {
  /** At most three, as glibc (MAXNS). */
  nameservers: string[];
  /** Per try. @default 5000 */
  timeoutMs: number;
  /** Rounds over the name servers. @default 2 */
  attempts: number;
}

/** glibc's limits (resolv.h RES_MAXRETRANS, RES_MAXRETRY, MAXNS). */
const MAX_TIMEOUT_S = 30;
const MAX_ATTEMPTS = 5;
const MAX_NS = 3;

/** Reads resolv.conf text: `nameserver` lines and `options timeout:N attempts:N`. */
export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], timeoutMs: 5000, attempts: 2 };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [key, ...args] = line.split(/\s+/);
    if (key === "nameserver" && args[0] && conf.nameservers.length < MAX_NS) {
      conf.nameservers.push(args[0].replace(/%.*$/, ""));
    } else if (key === "options") {
      for (const o of args) {
        const m = /^(timeout|attempts):(\d+)$/.exec(o);
        if (!m) continue;
        const n = Number(m[2]);
        if (m[1] === "timeout") conf.timeoutMs = Math.min(Math.max(n, 1), MAX_TIMEOUT_S) * 1000;
        else conf.attempts = Math.min(Math.max(n, 1), MAX_ATTEMPTS);
      }
    }
  }
  return conf;
}

/**
 * The name servers this process asks instead of resolv.conf's
 * (postwarden_dns_servers; lib/service runService sets them from the
 * configuration): null, resolv.conf's.
 */
let configured: NameServer[] | null = null;

/** Sets (or, with an empty list, clears) the name servers every lookup of this process asks. */
export function useNameServers(servers: NameServer[]): void {
  configured = servers.length ? servers.map((s) => ({ ...s })) : null;
}

/** The name servers set by {@link useNameServers}, or null for resolv.conf's. */
export function configuredNameServers(): NameServer[] | null {
  return configured;
}

/**
 * postwarden_dns_servers' value: addresses, each with an optional port
 * ("192.0.2.53", "127.0.0.1:5353", "::1", "[::1]:5353"), separated by
 * spaces or commas. Throws on anything else.
 */
export function parseNameServers(value: string): NameServer[] {
  const out: NameServer[] = [];
  for (const item of value.split(/[\s,]+/).filter(Boolean)) {
    let m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(item);
    if (m && m[1].split(".").some((o) => Number(o) > 255)) m = null;
    m ??= /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/i.exec(item) ??
      /^([0-9a-f]*:[0-9a-f:.]+)()$/i.exec(item);
    const port = m?.[2] ? Number(m[2]) : 53;
    if (!m || port < 1 || port > 65535) {
      throw new Error(`not a name server address: "${item}" (address or address:port)`);
    }
    out.push({ ipAddr: m[1], port });
  }
  return out;
}

/**
 * Where and how to ask: the configured name servers (resolv.conf's
 * options still apply), else resolv.conf's, with their ports.
 */
export async function nameServerSetup(
  resolvConf = "/etc/resolv.conf",
): Promise<ResolvConf & { servers: NameServer[] }> {
  let conf: ResolvConf;
  try {
    conf = parseResolvConf(await Deno.readTextFile(resolvConf));
  } catch (e) {
    if (!configured) throw e;
    conf = { nameservers: [], timeoutMs: 5000, attempts: 2 };
  }
  const servers = configured ?? conf.nameservers.map((ip) => ({ ipAddr: ip, port: 53 }));
  return { ...conf, nameservers: servers.map((s) => s.ipAddr), servers };
}

/** One name server: an address and a port. */
export interface NameServer {
  ipAddr: string;
  /** @default 53 */
  port?: number;
}

/** How a confirmation ended. */
export type Confirmation =
  /** The name does not exist; `ttl`: how long that may be cached (wire.ts negativeTtl). */
  | { status: "nxdomain"; ttl?: number }
  /** The name exists, without records of the type asked. */
  | { status: "nodata"; ttl?: number }
  /** This time the records were there (the first answer was a passing failure). */
  | { status: "records"; records: DnsRecord[] }
  /** A response code that says "not now" (SERVFAIL, REFUSED, ...): temporary. */
  | { status: "rcode"; rcode: number; detail: string }
  /** A name server took the question and did not answer in time: temporary. */
  | { status: "timeout"; detail: string }
  /**
   * No name server gave a usable answer (connection refused, closed before
   * the answer, a malformed or mismatched answer, none configured): the
   * answer stays unknown.
   */
  | { status: "unreachable"; detail: string };

/** Options for {@link confirmNegative}. */
export interface ConfirmOptions {
  /** Ask this server instead of resolv.conf's (tests; Deno.resolveDns' nameServer). */
  nameServer?: NameServer;
  /** resolv.conf's path. @default "/etc/resolv.conf" */
  resolvConf?: string;
  /** Give up at this time (ms since the epoch). */
  deadline?: number;
  /** Opens a TCP connection. @default Deno.connect */
  connect?: (ns: { hostname: string; port: number }) => Promise<Deno.Conn>;
}

const RCODE_NAMES: Record<number, string> = {
  [RCODE.FORMERR]: "FORMERR",
  [RCODE.SERVFAIL]: "SERVFAIL",
  [RCODE.NOTIMP]: "NOTIMP",
  [RCODE.REFUSED]: "REFUSED",
};

/**
 * Why a try gave nothing: the server cannot be reached (not worth asking
 * again), it did not answer in time, or its answer was unusable.
 */
class TryFailure extends Error {
  override readonly name = "TryFailure";
  constructor(readonly kind: "unreachable" | "timeout" | "unusable", message: string) {
    super(message);
  }
}

/** Resolves with `p`, or rejects after `ms`; `onLate` gets what `p` gives too late. */
function within<T>(p: Promise<T>, ms: number, onLate: (v: T) => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  return Promise.race([
    p.then((v) => {
      if (late) onLate(v);
      return v;
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        reject(new TryFailure("timeout", `no answer within ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new TryFailure("unusable", "connection closed before the answer");
    got += r;
  }
  return out;
}

/**
 * One question over one TCP connection (RFC 1035 4.2.2: two-octet length,
 * then the message); `query` says how it is asked (lib/dane: with the DO bit).
 */
export async function queryTcp(
  ns: { hostname: string; port: number },
  name: string,
  type: RrType,
  timeoutMs: number,
  connect: (ns: { hostname: string; port: number }) => Promise<Deno.Conn> = (o) =>
    Deno.connect({ ...o, transport: "tcp" }),
  query: QueryOptions = {},
): Promise<DnsMessage> {
  const id = crypto.getRandomValues(new Uint16Array(1))[0];
  const question = encodeQuery(id, name, type, query);
  let conn: Deno.Conn;
  try {
    conn = await within(connect(ns), timeoutMs, (c) => c.close());
  } catch (e) {
    if (e instanceof TryFailure) throw e;
    throw new TryFailure("unreachable", (e as Error).message);
  }
  try {
    const exchange = async () => {
      await writeFramed(conn, question);
      const len = await readExactly(conn, 2);
      const size = (len[0] << 8) | len[1];
      if (size < 12) throw new TryFailure("unusable", `answer of ${size} bytes`);
      return decodeMessage(await readExactly(conn, size));
    };
    const reply = await within(exchange(), timeoutMs, () => {});
    const q = reply.question;
    if (
      reply.id !== id || !reply.response || reply.opcode !== 0 || q === null ||
      q.name.toLowerCase() !== name.replace(/\.$/, "").toLowerCase() || q.type !== RR_TYPES[type]
    ) {
      throw new TryFailure("unusable", "answer does not match the question");
    }
    return reply;
  } catch (e) {
    if (e instanceof TryFailure) throw e;
    throw new TryFailure("unusable", (e as Error).message); // a malformed answer, a reset
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/** The records of `type` for `name`, following CNAMEs within the answer. */
function recordsFor(answers: DnsRecord[], name: string, type: RrType): DnsRecord[] {
  const names = new Set([name.replace(/\.$/, "").toLowerCase()]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of answers) {
      if (r.type === "CNAME" && names.has(r.name.toLowerCase())) {
        const target = (r.data as string).toLowerCase();
        if (!names.has(target)) {
          names.add(target);
          grew = true;
        }
      }
    }
  }
  return answers.filter((r) => r.type === type && names.has(r.name.toLowerCase()));
}

/**
 * Asks `name`/`type` over TCP and says what the answer really was. Never
 * throws: every failure is a {@link Confirmation}.
 */
export async function confirmNegative(
  name: string,
  type: RrType,
  opts: ConfirmOptions = {},
): Promise<Confirmation> {
  let servers: NameServer[];
  let conf: ResolvConf;
  if (opts.nameServer) {
    servers = [opts.nameServer];
    conf = { nameservers: [opts.nameServer.ipAddr], timeoutMs: 5000, attempts: 2 };
  } else {
    try {
      const setup = await nameServerSetup(opts.resolvConf);
      servers = setup.servers;
      conf = setup;
    } catch (e) {
      return {
        status: "unreachable",
        detail: `cannot read ${opts.resolvConf ?? "/etc/resolv.conf"}: ${(e as Error).message}`,
      };
    }
  }
  if (servers.length === 0) {
    return { status: "unreachable", detail: "no nameserver in resolv.conf" };
  }
  const dead = new Set<string>();
  const problems: string[] = [];
  let last: Confirmation | null = null;
  for (let round = 0; round < conf.attempts; round++) {
    for (const ns of servers) {
      const ip = ns.ipAddr;
      const port = ns.port ?? 53;
      if (dead.has(`${ip} ${port}`)) continue;
      const left = opts.deadline === undefined ? conf.timeoutMs : opts.deadline - Date.now();
      if (left <= 0) {
        return last ?? { status: "timeout", detail: problems.join("; ") || "out of time" };
      }
      const where = ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
      let reply;
      try {
        reply = await queryTcp(
          { hostname: ip, port },
          name,
          type,
          Math.min(conf.timeoutMs, left),
          opts.connect,
        );
      } catch (e) {
        const f = e as TryFailure;
        problems.push(`${where}: ${f.message}`);
        if (f.kind === "unreachable") dead.add(`${ip} ${port}`);
        if (f.kind === "timeout") last ??= { status: "timeout", detail: `${where}: ${f.message}` };
        continue;
      }
      const ttl = reply.negativeTtl === undefined ? {} : { ttl: reply.negativeTtl };
      if (reply.rcode === RCODE.NXDOMAIN) return { status: "nxdomain", ...ttl };
      if (reply.rcode === RCODE.NOERROR) {
        const records = recordsFor(reply.answers, name, type);
        return records.length > 0 ? { status: "records", records } : { status: "nodata", ...ttl };
      }
      const code = RCODE_NAMES[reply.rcode] ?? `rcode ${reply.rcode}`;
      last = { status: "rcode", rcode: reply.rcode, detail: `${where}: ${code}` };
      dead.add(`${ip} ${port}`); // it answered; asking again will not change its mind
    }
  }
  return last ?? { status: "unreachable", detail: problems.join("; ") };
}
