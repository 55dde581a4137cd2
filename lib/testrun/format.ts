/**
 * The test files of `postwarden test` (lib/testrun): one SMTP dialog
 * against the configuration under test and what must come of it, one
 * step per line, the format of the project's own dialog tests
 * (daemons/smtpd/testdata):
 *
 *   # comment
 *   service: NAME          the master.cf inet service to talk to (default:
 *                          "smtp", else the first smtpd inet service)
 *   client: NAME[ADDR]     who connects (XCLIENT NAME and ADDR; NAME may be
 *                          "unknown"); default: the runner's 127.0.0.1
 *   dns: TYPE NAME VALUE   a record of the test zone (A, AAAA, MX "PREF HOST",
 *                          TXT, PTR, NS); every name not given is NXDOMAIN
 *   c: TEXT                the client sends TEXT and CRLF (escapes \r \n \t \\)
 *   s: REGEX               the server's next reply, lines joined by "\n",
 *                          matches ^(REGEX)$; a bare 3-digit code checks the code
 *   tls:                   the TLS handshake, after the server's 220 to
 *                          STARTTLS (its certificate is not checked)
 *   queued: RCPT [-> TRANSPORT:NEXTHOP]
 *                          a message was queued for RCPT (an envelope
 *                          recipient), routed (transport_maps, relay, ...) so
 *   not-queued:            no message was queued
 *   held:                  the message went to the hold queue
 *   discarded:             a check discarded the message ("discard:" logged)
 *
 * What came of the mail (the delivery agents' status lines, as Postfix
 * logs them; RCPT is a recipient's final address, to=<..>, or its
 * original, orig_to=<..>; nothing leaves the instance: lib/deliver/capture.ts):
 *   delivered: RCPT [-> ADDRESS]
 *                          delivered by local, virtual, pipe or another
 *                          agent that is not a server (to ADDRESS, the to=
 *                          address after aliases and forwarding)
 *   relayed: RCPT -> HOST  sent to that server: HOST is its name, or its
 *                          name[address]:port as logged (relay=)
 *   bounced: RCPT [DSN]    returned to the sender (with that status: 5.1.1,
 *                          or a prefix such as 5.1)
 *   deferred: RCPT [DSN]   left in the queue for a later try
 *   header: REGEX          a header field ("Name: value", continuation lines
 *                          joined) of a copy delivered or relayed matches
 *   no-header: REGEX       no header field of any copy matches
 *   log: REGEX             some line of the instance's log for this test matches
 *   no-log: REGEX          no line does
 *
 *   c! TEXT                the client sends TEXT as it is (escapes only, no CRLF)
 *   close                  the client closes its side of the connection
 *
 * The project's own smtpd dialogs (daemons/smtpd/testdata, run in memory
 * by daemons/smtpd/session_test.ts with a fake cleanup and resolver) are
 * this format too, with keywords only an in-memory session can honour,
 * read when {@link ParseOptions.harness} is set and refused otherwise:
 * `config: NAME = VALUE` (a main.cf line), `peer: STATUS RNAME RSTATUS`,
 * `cleanup: ok|451|552|down`, `flush` (ends one read of pipelined input),
 * `dns:` answers `nxdomain`/`servfail`/`timeout`, and `expect-sender:`,
 * `expect-rcpts:`, `expect-content:`, `expect-received:`, `expect-attrs:`,
 * `expect-actions:`, `expect-late-actions:`, `expect-messages:`,
 * `expect-xforward:` on what the fake cleanup received.
 *
 * c:/s: lines run in order; a connection's dialog ends with the file (the
 * runner closes it). The expectations are checked after the dialog.
 * Unknown keywords, bad regular expressions and malformed lines are errors
 * with their line number: a test that cannot be read fails, it is never
 * skipped.
 *
 * @module
 */

/** One dialog step. */
export type Step =
  | { kind: "c"; line: number; text: string }
  /** c!: sent as it is, without CRLF. */
  | { kind: "raw"; line: number; text: string }
  | { kind: "close"; line: number }
  /** A keyword of the in-memory smtpd dialogs ({@link HARNESS_STEPS}), in its place among the steps. */
  | { kind: "harness"; line: number; key: string; arg: string }
  | { kind: "tls"; line: number }
  | { kind: "s"; line: number; pattern: RegExp; source: string };

/** One expectation, checked after the dialog. */
export type Expectation =
  | { kind: "queued"; line: number; rcpt: string; route?: string }
  | { kind: "not-queued"; line: number }
  | { kind: "held" | "discarded"; line: number }
  | { kind: "delivered" | "relayed"; line: number; rcpt: string; to?: string }
  | { kind: "bounced" | "deferred"; line: number; rcpt: string; dsn?: string }
  | { kind: "header" | "no-header"; line: number; pattern: RegExp; source: string }
  | { kind: "log"; line: number; pattern: RegExp; source: string }
  | { kind: "no-log"; line: number; pattern: RegExp; source: string };

/** A record of the test zone. */
export interface ZoneRecord {
  type: "A" | "AAAA" | "MX" | "TXT" | "PTR" | "NS";
  name: string;
  value: string | [number, string];
  /** In-memory dialogs only: the name's lookups of this type fail so. */
  failure?: "nxdomain" | "servfail" | "timeout";
}

/** How to read a file. */
export interface ParseOptions {
  /** Also read the in-memory smtpd dialogs' keywords (the module doc lists them). */
  harness?: boolean;
}

/** Keywords of the in-memory smtpd dialogs that are steps, checked in their place. */
export const HARNESS_STEPS = new Set([
  "flush",
  "expect-sender",
  "expect-rcpts",
  "expect-content",
  "expect-received",
  "expect-attrs",
  "expect-actions",
  "expect-late-actions",
  "expect-messages",
  "expect-xforward",
]);

/** A parsed test file. */
export interface TestFile {
  name: string;
  /** In-memory dialogs: main.cf lines (config:), the peer: line, the cleanup: answer. */
  config: string[];
  peer?: string;
  cleanup?: string;
  service?: string;
  client?: { name: string; addr: string };
  dns: ZoneRecord[];
  steps: Step[];
  expect: Expectation[];
}

/** A test file that cannot be read: its line and why. */
export class TestFormatError extends Error {
  override readonly name = "TestFormatError";
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
  }
}

/**
 * The first full reply in text a server sent (its lines joined by "\n",
 * without CRLFs) and the text after it; null while the reply is incomplete.
 */
export function takeReply(text: string): { reply: string; rest: string } | null {
  const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(text);
  if (!m) return null;
  return {
    reply: m[0].replace(/\r\n$/, "").replaceAll("\r\n", "\n"),
    rest: text.slice(m[0].length),
  };
}

/** Replaces \r \n \t \\ escapes. */
export function unescape(s: string): string {
  return s.replace(
    /\\([rnt\\])/g,
    (_, c) => ({ r: "\r", n: "\n", t: "\t", "\\": "\\" })[c as string]!,
  );
}

/** An address without its angle brackets. */
function bare(a: string): string {
  return a.replace(/^<(.*)>$/, "$1");
}

const ZONE_TYPES = new Set(["A", "AAAA", "MX", "TXT", "PTR", "NS"]);

/** Parses a test file's text; `name` is for messages. */
export function parseTestFile(name: string, text: string, opts: ParseOptions = {}): TestFile {
  const t: TestFile = { name, config: [], dns: [], steps: [], expect: [] };
  const harnessOnly = (line: number, key: string) => {
    if (!opts.harness) {
      fail(
        line,
        `${key} is a keyword of the project's in-memory smtpd dialogs ` +
          "(daemons/smtpd/session_test.ts), not of postwarden test",
      );
    }
  };
  const fail = (line: number, msg: string): never => {
    throw new TestFormatError(name, line, msg);
  };
  const regex = (line: number, source: string): RegExp => {
    const full = /^\d{3}$/.test(source) ? `${source}(?:[ -].*)?(?:\n.*)*` : source;
    try {
      return new RegExp(`^(?:${full})$`, "s");
    } catch (e) {
      return fail(line, `bad regular expression: ${(e as Error).message}`);
    }
  };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const raw = lines[i].replace(/\r$/, "");
    if (raw.trim() === "" || raw.trimStart().startsWith("#")) continue;
    if (raw.startsWith("c! ")) {
      t.steps.push({ kind: "raw", line, text: unescape(raw.slice(3)) });
      continue;
    }
    if (raw === "close") {
      t.steps.push({ kind: "close", line });
      continue;
    }
    if (raw === "flush") {
      harnessOnly(line, "flush");
      t.steps.push({ kind: "harness", line, key: "flush", arg: "" });
      continue;
    }
    const m = /^([a-z-]+):(?: (.*))?$/.exec(raw);
    if (!m) fail(line, `not "keyword: value": ${JSON.stringify(raw.slice(0, 80))}`);
    const [, key, arg = ""] = m!;
    if (HARNESS_STEPS.has(key)) {
      harnessOnly(line, `${key}:`);
      t.steps.push({ kind: "harness", line, key, arg });
      continue;
    }
    switch (key) {
      case "config":
        harnessOnly(line, "config:");
        if (t.steps.length) fail(line, "config: after the first step");
        t.config.push(arg);
        break;
      case "peer":
        harnessOnly(line, "peer:");
        t.peer = arg.trim();
        break;
      case "cleanup":
        harnessOnly(line, "cleanup:");
        if (!/^(ok|451|552|down)$/.test(arg.trim())) {
          fail(line, "cleanup: wants ok, 451, 552 or down");
        }
        t.cleanup = arg.trim();
        break;
      case "service":
        if (!arg.trim()) fail(line, "service: needs a master.cf service name");
        t.service = arg.trim();
        break;
      case "client": {
        const c = /^([^\s[\]]+)\[([0-9a-fA-F:.]+)\]$/.exec(arg.trim());
        if (!c) fail(line, 'client: wants NAME[ADDR], e.g. "mail.example.com[192.0.2.1]"');
        t.client = { name: c![1], addr: c![2] };
        break;
      }
      case "dns": {
        const d = /^(\S+)\s+(\S+)\s+(.+)$/.exec(arg.trim());
        if (!d || !ZONE_TYPES.has(d[1].toUpperCase())) {
          fail(line, "dns: wants TYPE NAME VALUE, TYPE one of A AAAA MX TXT PTR NS");
        }
        const type = d![1].toUpperCase() as ZoneRecord["type"];
        const name = d![2].toLowerCase().replace(/\.$/, "");
        let value: ZoneRecord["value"] = d![3];
        if (/^(nxdomain|servfail|timeout)$/.test(d![3])) {
          harnessOnly(line, `dns: ${d![3]}`);
          t.dns.push({ type, name, value, failure: d![3] as ZoneRecord["failure"] });
          break;
        }
        if (type === "MX") {
          const mx = /^(\d{1,5})\s+(\S+)$/.exec(d![3]);
          if (!mx) fail(line, 'dns: MX wants "PREFERENCE HOST"');
          value = [Number(mx![1]), mx![2]];
        }
        t.dns.push({ type, name, value });
        break;
      }
      case "c":
        t.steps.push({ kind: "c", line, text: unescape(arg) });
        break;
      case "s":
        t.steps.push({ kind: "s", line, pattern: regex(line, arg), source: arg });
        break;
      case "tls":
        if (arg.trim()) fail(line, "tls: takes no value");
        t.steps.push({ kind: "tls", line });
        break;
      case "queued": {
        const q = /^(\S+)(?:\s+->\s+(\S+))?$/.exec(arg.trim());
        if (!q) fail(line, "queued: wants RCPT [-> TRANSPORT:NEXTHOP]");
        t.expect.push({
          kind: "queued",
          line,
          rcpt: bare(q![1]),
          ...(q![2] ? { route: q![2] } : {}),
        });
        break;
      }
      case "not-queued":
      case "held":
      case "discarded":
        if (arg.trim()) fail(line, `${key}: takes no value`);
        t.expect.push({ kind: key, line });
        break;
      case "delivered":
      case "relayed": {
        const d = /^(\S+)(?:\s+->\s+(\S+))?$/.exec(arg.trim());
        if (!d || (key === "relayed" && !d[2])) {
          fail(
            line,
            key === "relayed"
              ? "relayed: wants RCPT -> HOST"
              : "delivered: wants RCPT [-> ADDRESS]",
          );
        }
        t.expect.push({
          kind: key,
          line,
          rcpt: bare(d![1]),
          ...(d![2] ? { to: key === "delivered" ? bare(d![2]) : d![2] } : {}),
        });
        break;
      }
      case "bounced":
      case "deferred": {
        const b = /^(\S+)(?:\s+([245](?:\.\d{1,3}){0,2}))?$/.exec(arg.trim());
        if (!b) fail(line, `${key}: wants RCPT [DSN], e.g. "x@example.com 5.1.1"`);
        t.expect.push({ kind: key, line, rcpt: bare(b![1]), ...(b![2] ? { dsn: b![2] } : {}) });
        break;
      }
      case "header":
      case "no-header":
        t.expect.push({ kind: key, line, pattern: regex(line, arg), source: arg });
        break;
      case "log":
      case "no-log":
        t.expect.push({ kind: key, line, pattern: regex(line, `.*(?:${arg}).*`), source: arg });
        break;
      default:
        fail(line, `unknown keyword "${key}"`);
    }
  }
  if (t.steps.length === 0) fail(lines.length, "no dialog (c: and s: lines)");
  return t;
}
