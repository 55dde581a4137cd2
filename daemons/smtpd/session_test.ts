/**
 * Scripted SMTP dialogs against runSession, chasquid-style: each
 * `testdata/*.dialog` file is one test. The session runs in memory; its
 * cleanup is a fake cleanup server on a temporary UNIX socket that records
 * what it receives.
 *
 * Dialog format, one step per line (blank lines ignored):
 *
 *   # comment
 *   config: name = value     main.cf line (before the first step), after
 *                            "compatibility_level = 3.6"
 *   client: name[addr]       the connecting client (default localhost[127.0.0.1])
 *   peer: status rname rstatus  how its names were found (peername.ts): name status,
 *                            PTR name and its status (default: from the name)
 *   dns: TYPE name answer    a record of the fake resolver (A, AAAA, MX "pref host",
 *                            TXT, PTR; or nxdomain/servfail/timeout); any other name
 *                            is NXDOMAIN: dialogs never reach the network
 *   cleanup: ok|451|552|down the fake cleanup's answer after end of content
 *   c: text                  client sends text + CRLF (escapes \r \n \t \\)
 *   c! text                  client sends text as is (escapes only)
 *   s: regex                 the next full server reply, lines joined by \n without
 *                            CRLF, matches ^(regex)$; a bare 3-digit code checks the code
 *   flush                    ends the current read (the next c:/c! starts a new one)
 *   close                    client closes its side
 *   expect-sender: addr      the last message cleanup completed: envelope sender
 *   expect-rcpts: json       ... its recipients (deep equality)
 *   expect-content: text     ... its content without smtpd's own Received: header (escapes)
 *   expect-attrs: json       ... its envelope attributes named in json (null: absent)
 *   expect-messages: n       number of messages cleanup completed so far
 *   expect-xforward: json    ... its XFORWARD attributes (deep equality; "null": none)
 *   expect-log: regex        some log message (after "program[pid]: ") matches; checked at the end
 *   expect-no-log: regex     no log message matches; checked at the end
 *
 * Consecutive c:/c! lines go to the session as one read (pipelining). After
 * the last step the client closes its side; every server reply must have
 * been matched by then.
 */
import { join } from "node:path";
import { xclientAuth } from "./xclient.ts";
import { CleanupSession } from "../../lib/cleanup/client.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { type IpcConn, ipcListen } from "../../lib/ipc/mod.ts";
import { Logger } from "../../lib/log/mod.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { restrictionContext } from "./restrictions.ts";
import type { PeerStatus } from "./peername.ts";
import type { FullResolver, MxRecord } from "../../lib/dns/mod.ts";
import { type Answer, fakeResolver } from "../../lib/dns/testing.ts";
import { type ClientInfo, runSession } from "./session.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Replaces \r \n \t \\ escapes. */
function unescape(s: string): string {
  return s.replace(
    /\\([rnt\\])/g,
    (_, c) => ({ r: "\r", n: "\n", t: "\t", "\\": "\\" })[c as string]!,
  );
}

/** What the fake cleanup saw on one connection. */
interface Received {
  queueId: string;
  envelope:
    | { sender: string; recipients: unknown[]; attrs?: { xforward?: unknown }; actions?: unknown }
    | null;
  /** The end-of-data actions message, when one came after the content. */
  late?: unknown;
  content: Uint8Array[];
  ended: boolean;
}

interface FakeCleanup {
  messages: Received[];
  close(): Promise<void>;
}

function fakeCleanup(path: string, answer: string): FakeCleanup {
  const messages: Received[] = [];
  const handlers: Promise<void>[] = [];
  let n = 0;
  const handle = async (conn: IpcConn) => {
    const open = await conn.recvMsg();
    assertEquals(open.op, "open");
    const rec: Received = { queueId: `4ABC${n++}DEF`, envelope: null, content: [], ended: false };
    await conn.send({ queueId: rec.queueId });
    for (;;) {
      const f = await conn.recv();
      if (f === null) return; // smtpd aborted
      if (f.kind === "msg" && rec.envelope) rec.late = f.msg;
      else if (f.kind === "msg") rec.envelope = f.msg as Received["envelope"];
      else if (f.kind === "data") rec.content.push(f.data);
      else break;
    }
    rec.ended = true;
    messages.push(rec);
    if (answer === "451") {
      await conn.send({
        status: "error",
        code: 451,
        dsn: "4.3.0",
        text: "Error: queue file write error",
      });
    } else if (answer === "552") {
      await conn.send({
        status: "error",
        code: 552,
        dsn: "5.3.4",
        text: "Error: message file too big",
      });
    } else {
      await conn.send({ status: "ok", queueId: rec.queueId });
    }
  };
  const server = ipcListen(path, (conn) => {
    const p = handle(conn).catch(() => {});
    handlers.push(p);
    return p;
  }, { timeoutMs: 10_000 });
  return {
    messages,
    async close() {
      server.close();
      await server.done;
      await Promise.all(handlers);
    },
  };
}

/** Client input as the session reads it: queued chunks, then null. */
class ClientInput {
  #chunks: (Uint8Array | null)[] = [];
  #waiter: (() => void) | null = null;

  push(chunk: Uint8Array | null): void {
    this.#chunks.push(chunk);
    this.#waiter?.();
    this.#waiter = null;
  }

  async read(): Promise<Uint8Array | null> {
    while (this.#chunks.length === 0) {
      await new Promise<void>((r) => (this.#waiter = r));
    }
    const c = this.#chunks[0];
    if (c !== null) this.#chunks.shift(); // null stays: end of stream is sticky
    return c;
  }
}

/** Server output, split into full replies. */
class ServerOutput {
  #text = "";
  #waiter: (() => void) | null = null;
  ended = false;

  write(b: Uint8Array): void {
    this.#text += decoder.decode(b);
    this.wake();
  }

  wake(): void {
    this.#waiter?.();
    this.#waiter = null;
  }

  /** The next full reply without CRLFs, lines joined by "\n"; null if the session ended first. */
  async nextReply(timeoutMs: number): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#text);
      if (m) {
        this.#text = this.#text.slice(m[0].length);
        return m[0].replace(/\r\n$/, "").replaceAll("\r\n", "\n");
      }
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no full reply within ${timeoutMs}ms; have ${JSON.stringify(this.#text)}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiter = r;
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
    }
  }

  get rest(): string {
    return this.#text;
  }
}

interface Step {
  line: number;
  kind: string;
  arg: string;
}

function parseDialog(
  text: string,
): {
  mainCf: string;
  client: string;
  cleanup: string;
  steps: Step[];
  peer: string;
  dns: string[];
} {
  // Like the main.cf of a current Postfix install; a dialog's config: lines come after it.
  let mainCf = "compatibility_level = 3.6\n";
  let client = "localhost[127.0.0.1]";
  let cleanup = "ok";
  let peer = "";
  const dns: string[] = [];
  const steps: Step[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) return;
    const m = /^(c!|[a-z-]+:|close$|flush$)\s?(.*)$/.exec(line);
    if (!m) throw new Error(`line ${i + 1}: cannot parse ${JSON.stringify(line)}`);
    const kind = m[1].replace(/:$/, "");
    if (kind === "config") {
      if (steps.length) throw new Error(`line ${i + 1}: config after the first step`);
      mainCf += m[2] + "\n";
    } else if (kind === "client") client = m[2].trim();
    else if (kind === "cleanup") cleanup = m[2].trim();
    else if (kind === "peer") peer = m[2].trim();
    else if (kind === "dns") dns.push(m[2].trim());
    else steps.push({ line: i + 1, kind, arg: m[2] });
  });
  return { mainCf, client, cleanup, steps, peer, dns };
}

function receivedWithoutOwnHeader(r: Received): string {
  const text = decoder.decode(concat(r.content));
  // smtpd's Received: header is the first header, with its continuation lines.
  return text.replace(/^Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*/, "");
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A dialog's `peer:` line as ClientInfo fields. */
function peerOf(line: string): Partial<ClientInfo> {
  if (line === "") return {};
  const [nameStatus, reverseName, reverseStatus] = line.split(/\s+/) as [
    PeerStatus,
    string,
    PeerStatus,
  ];
  return { nameStatus, reverseName, reverseStatus };
}

/** A dialog's `dns:` lines as a fake resolver. */
function zoneOf(lines: string[]): FullResolver {
  const zone = {
    a: {} as Record<string, Answer<string[]>>,
    aaaa: {} as Record<string, Answer<string[]>>,
    mx: {} as Record<string, Answer<MxRecord[]>>,
    txt: {} as Record<string, Answer<string[][]>>,
    ptr: {} as Record<string, Answer<string[]>>,
  };
  for (const line of lines) {
    const m = /^(A|AAAA|MX|TXT|PTR)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`bad dns: ${line}`);
    const [, type, name, answer] = m;
    const failure = /^(nxdomain|servfail|timeout)$/.test(answer)
      ? answer as "nxdomain" | "servfail" | "timeout"
      : null;
    const add = <T>(table: Record<string, Answer<T[]>>, value: T) => {
      const old = table[name];
      table[name] = failure ?? [...(Array.isArray(old) ? old : []), value];
    };
    if (type === "A") add(zone.a, answer);
    else if (type === "AAAA") add(zone.aaaa, answer);
    else if (type === "PTR") add(zone.ptr, answer);
    else if (type === "TXT") add(zone.txt, [answer]);
    else {
      const [pref, host] = answer.split(/\s+/);
      add(zone.mx, { preference: Number(pref), exchange: host ?? "" });
    }
  }
  return fakeResolver(zone);
}

async function runDialog(file: string): Promise<void> {
  await runDialogText(file, await Deno.readTextFile(new URL(file, TESTDATA)));
}

/** Runs a dialog given as text; `file` names it in failure messages. */
async function runDialogText(file: string, text: string): Promise<void> {
  const dialog = parseDialog(text);
  const dir = await Deno.makeTempDir({ prefix: "smtpd-dialog-" });
  const socket = join(dir, "cleanup");
  const cleanup = fakeCleanup(socket, dialog.cleanup);
  const logs: string[] = [];
  const config = makeConfig(dir, dialog.mainCf, { hostname: "mx.test.example" });
  const log = new Logger({
    program: "postwarden/smtpd",
    hostname: "mx",
    sinks: [(l) => logs.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const cm = /^(.*)\[(.*)\]$/.exec(dialog.client);
  if (!cm) throw new Error(`bad client: ${dialog.client}`);
  const input = new ClientInput();
  const output = new ServerOutput();
  const session = runSession({
    config,
    log,
    client: { name: cm[1], addr: cm[2], port: 54321, ...peerOf(dialog.peer) },
    read: () => input.read(),
    write: (b) => {
      output.write(b);
      return Promise.resolve();
    },
    openCleanup: () => {
      if (dialog.cleanup === "down") return Promise.reject(new Error("connect: refused"));
      return CleanupSession.open(socket, { retryMs: 0 });
    },
    restrictions: restrictionContext(config, (m) => log.warn(m), undefined, {
      dns: zoneOf(dialog.dns),
    }),
    now: () => new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
    xclient: xclientAuth(config),
  }).finally(() => {
    output.ended = true;
    output.wake();
  });

  const logChecks: Step[] = [];
  let batch: string[] = [];
  const send = () => {
    if (batch.length) input.push(encoder.encode(batch.join("")));
    batch = [];
  };
  const lastMessage = () => {
    const m = cleanup.messages.at(-1);
    if (!m) throw new Error("cleanup has completed no message");
    return m;
  };
  try {
    for (const step of dialog.steps) {
      const where = `${file}:${step.line}`;
      if (step.kind !== "c" && step.kind !== "c!") send();
      switch (step.kind) {
        case "c":
          batch.push(unescape(step.arg) + "\r\n");
          break;
        case "c!":
          batch.push(unescape(step.arg));
          break;
        case "flush":
          break;
        case "close":
          input.push(null);
          break;
        case "s": {
          const reply = await output.nextReply(5000);
          if (reply === null) throw new Error(`${where}: session ended, expected ${step.arg}`);
          const ok = /^\d{3}$/.test(step.arg)
            ? reply.slice(0, 3) === step.arg && (reply.length === 3 || /^\d{3}[ -]/.test(reply))
            : new RegExp(`^(?:${step.arg})$`, "s").test(reply);
          assert(ok, `${where}: reply ${JSON.stringify(reply)} does not match ${step.arg}`);
          break;
        }
        case "expect-sender":
          assertEquals(lastMessage().envelope?.sender, step.arg.trim(), where);
          break;
        case "expect-rcpts":
          assertEquals(lastMessage().envelope?.recipients, JSON.parse(step.arg), where);
          break;
        case "expect-content":
          assertEquals(receivedWithoutOwnHeader(lastMessage()), unescape(step.arg), where);
          break;
        case "expect-received":
          assert(
            new RegExp(`^(?:${step.arg})`, "s").test(decoder.decode(concat(lastMessage().content))),
            `${where}: Received header does not match`,
          );
          break;
        case "expect-attrs": {
          const env = lastMessage().envelope as { attrs?: Record<string, unknown> } | null;
          for (const [k, v] of Object.entries(JSON.parse(step.arg))) {
            assertEquals(env?.attrs?.[k] ?? null, v, `${where}: ${k}`);
          }
          break;
        }
        case "expect-actions":
          assertEquals(lastMessage().envelope?.actions ?? null, JSON.parse(step.arg), where);
          break;
        case "expect-late-actions":
          assertEquals(lastMessage().late ?? null, JSON.parse(step.arg), where);
          break;
        case "expect-messages":
          assertEquals(cleanup.messages.length, Number(step.arg), where);
          break;
        case "expect-xforward":
          assertEquals(
            lastMessage().envelope?.attrs?.xforward ?? null,
            JSON.parse(step.arg),
            where,
          );
          break;
        case "expect-log":
        case "expect-no-log":
          logChecks.push(step);
          break;
        default:
          throw new Error(`${where}: unknown step ${step.kind}`);
      }
    }
    send();
    input.push(null);
    await session;
    assertEquals(output.rest, "", `${file}: unmatched server output`);
    for (const step of logChecks) {
      const re = new RegExp(step.arg);
      const found = logs.some((l) => re.test(l));
      assert(
        step.kind === "expect-log" ? found : !found,
        `${file}:${step.line}: ${step.kind} ${step.arg}\nlog:\n${logs.join("\n")}`,
      );
    }
  } finally {
    input.push(null);
    await session.catch(() => {});
    await cleanup.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const files = [...Deno.readDirSync(TESTDATA)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".dialog"))
  .sort();

for (const file of files) {
  Deno.test(`smtpd dialog ${file.replace(/\.dialog$/, "")}`, () => runDialog(file));
}

Deno.test("smtpd dialog: 1200 recipients get 452 for the excess, not 421", async () => {
  // Defaults: smtpd_recipient_limit 1000, smtpd_recipient_overshoot_limit 1000,
  // smtpd_hard_error_limit 20. Before the overshoot limit, every 452 was an error.
  const lines = [
    "s: 220",
    "c: EHLO client.example",
    "s: 250",
    "c: MAIL FROM:<a@example.org>",
    "s: 250 2.1.0 Ok",
  ];
  for (let i = 1; i <= 1200; i++) {
    lines.push(`c: RCPT TO:<r${i}@localhost>`);
    lines.push(i <= 1000 ? "s: 250 2.1.5 Ok" : "s: 452 4.5.3 Error: too many recipients");
  }
  lines.push("c: DATA", "s: 354 .*", "c: x", "c: .", "s: 250 2.0.0 Ok: queued as 4ABC0DEF");
  lines.push(
    "expect-log: disconnect from localhost\\[127\\.0\\.0\\.1\\] ehlo=1 mail=1 rcpt=1200 data=1 commands=1203$",
  );
  await runDialogText("1200 recipients", lines.join("\n"));
});

Deno.test("smtpd: a client that never reads replies is dropped after smtpd_timeout", async () => {
  // Pipelining allowed: the burst of NOOPs is what keeps the writes coming.
  const config = makeConfig(
    "/tmp",
    "compatibility_level = 3.6\nsmtpd_timeout = 1s\nsmtpd_forbid_unauth_pipelining = no\n",
    {
      hostname: "mx.test.example",
    },
  );
  const logs: string[] = [];
  const log = new Logger({
    program: "postwarden/smtpd",
    hostname: "mx",
    sinks: [(l) => logs.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  // The client sends a pipelined burst of NOOPs and never reads: after the
  // greeting, the host's write never completes (a full socket buffer).
  const burst = encoder.encode("NOOP\r\n".repeat(50_000));
  let chunks = 0;
  let writes = 0;
  let written = 0;
  const started = Date.now();
  await runSession({
    config,
    log,
    client: { name: "localhost", addr: "127.0.0.1", port: 54321 },
    read: () => {
      const off = chunks++ * 16384;
      // After the burst the client keeps its side open without sending.
      return off < burst.length
        ? Promise.resolve(burst.slice(off, off + 16384))
        : new Promise<never>(() => {});
    },
    write: (b) => {
      if (writes++ === 0) {
        written += b.length;
        return Promise.resolve();
      }
      return new Promise<never>(() => {});
    },
    openCleanup: () => Promise.reject(new Error("not used")),
    restrictions: restrictionContext(config, (m) => log.warn(m), undefined, {
      dns: fakeResolver({}),
    }),
  });
  const elapsed = Date.now() - started;
  assert(elapsed >= 900 && elapsed < 3000, `session ended after ${elapsed}ms`);
  assertEquals(writes, 2, "no write after the stuck one (no 421 into a full pipe)");
  assert(written > 0);
  assert(logs.includes("timeout after NOOP from localhost[127.0.0.1]"), logs.join("\n"));
  assert(
    logs.some((l) => /^disconnect from localhost\[127\.0\.0\.1\] noop=\d+ commands=\d+$/.test(l)),
  );
});
