/**
 * Scripted SMTP dialogs against runSession, chasquid-style: each
 * `testdata/*.dialog` file is one test, in the format of `postwarden test`
 * (lib/testrun/format.ts, parsed there with its in-memory keywords:
 * config:, peer:, cleanup:, flush, dns: failures, expect-*:). The session
 * runs in memory; its cleanup is a fake cleanup server on a temporary UNIX
 * socket that records what it receives, its resolver a fake one (any name
 * not given is NXDOMAIN: dialogs never reach the network).
 *
 * Consecutive c:/c! lines go to the session as one read (pipelining). After
 * the last step the client closes its side; every server reply must have
 * been matched by then. log:/no-log: are checked at the end against the
 * session's log messages (after "program[pid]: ").
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
import { parseTestFile, takeReply, unescape, type ZoneRecord } from "../../lib/testrun/format.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

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
      const r = takeReply(this.#text);
      if (r) {
        this.#text = r.rest;
        return r.reply;
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
function peerOf(line: string | undefined): Partial<ClientInfo> {
  if (!line) return {};
  const [nameStatus, reverseName, reverseStatus] = line.split(/\s+/) as [
    PeerStatus,
    string,
    PeerStatus,
  ];
  return { nameStatus, reverseName, reverseStatus };
}

/** A dialog's `dns:` records as a fake resolver. */
function zoneOf(records: ZoneRecord[]): FullResolver {
  const zone = {
    a: {} as Record<string, Answer<string[]>>,
    aaaa: {} as Record<string, Answer<string[]>>,
    mx: {} as Record<string, Answer<MxRecord[]>>,
    txt: {} as Record<string, Answer<string[][]>>,
    ptr: {} as Record<string, Answer<string[]>>,
  };
  for (const r of records) {
    const add = <T>(table: Record<string, Answer<T[]>>, value: T) => {
      const old = table[r.name];
      table[r.name] = r.failure ?? [...(Array.isArray(old) ? old : []), value];
    };
    const text = typeof r.value === "string" ? r.value : "";
    if (r.type === "A") add(zone.a, text);
    else if (r.type === "AAAA") add(zone.aaaa, text);
    else if (r.type === "PTR") add(zone.ptr, text);
    else if (r.type === "TXT") add(zone.txt, [text]);
    else if (r.type === "MX") {
      const [preference, exchange] = Array.isArray(r.value) ? r.value : [0, ""];
      add(zone.mx, { preference, exchange });
    } else throw new Error(`dns: ${r.type} records are not served in memory`);
  }
  return fakeResolver(zone);
}

async function runDialog(file: string): Promise<void> {
  await runDialogText(file, await Deno.readTextFile(new URL(file, TESTDATA)));
}

/** Runs a dialog given as text; `file` names it in failure messages. */
async function runDialogText(file: string, text: string): Promise<void> {
  const dialog = parseTestFile(file, text, { harness: true });
  const dir = await Deno.makeTempDir({ prefix: "smtpd-dialog-" });
  const socket = join(dir, "cleanup");
  const cleanup = fakeCleanup(socket, dialog.cleanup ?? "ok");
  const logs: string[] = [];
  // Like the main.cf of a current Postfix install; a dialog's config: lines come after it.
  const mainCf = ["compatibility_level = 3.6", ...dialog.config, ""].join("\n");
  const config = makeConfig(dir, mainCf, { hostname: "mx.test.example" });
  const log = new Logger({
    program: "postwarden/smtpd",
    hostname: "mx",
    sinks: [(l) => logs.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const client = dialog.client ?? { name: "localhost", addr: "127.0.0.1" };
  const input = new ClientInput();
  const output = new ServerOutput();
  const session = runSession({
    config,
    log,
    client: { ...client, port: 54321, ...peerOf(dialog.peer) },
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
      if (step.kind !== "c" && step.kind !== "raw") send();
      if (step.kind === "c") batch.push(step.text + "\r\n");
      else if (step.kind === "raw") batch.push(step.text);
      else if (step.kind === "close") input.push(null);
      else if (step.kind === "tls") throw new Error(`${where}: no TLS in memory`);
      else if (step.kind === "s") {
        const reply = await output.nextReply(5000);
        if (reply === null) throw new Error(`${where}: session ended, expected ${step.source}`);
        assert(
          step.pattern.test(reply),
          `${where}: reply ${JSON.stringify(reply)} does not match ${step.source}`,
        );
      } else {
        const arg = step.arg;
        switch (step.key) {
          case "flush":
            break;
          case "expect-sender":
            assertEquals(lastMessage().envelope?.sender, arg.trim(), where);
            break;
          case "expect-rcpts":
            assertEquals(lastMessage().envelope?.recipients, JSON.parse(arg), where);
            break;
          case "expect-content":
            assertEquals(receivedWithoutOwnHeader(lastMessage()), unescape(arg), where);
            break;
          case "expect-received":
            assert(
              new RegExp(`^(?:${arg})`, "s").test(decoder.decode(concat(lastMessage().content))),
              `${where}: Received header does not match`,
            );
            break;
          case "expect-attrs": {
            const env = lastMessage().envelope as { attrs?: Record<string, unknown> } | null;
            for (const [k, v] of Object.entries(JSON.parse(arg))) {
              assertEquals(env?.attrs?.[k] ?? null, v, `${where}: ${k}`);
            }
            break;
          }
          case "expect-actions":
            assertEquals(lastMessage().envelope?.actions ?? null, JSON.parse(arg), where);
            break;
          case "expect-late-actions":
            assertEquals(lastMessage().late ?? null, JSON.parse(arg), where);
            break;
          case "expect-messages":
            assertEquals(cleanup.messages.length, Number(arg), where);
            break;
          case "expect-xforward":
            assertEquals(lastMessage().envelope?.attrs?.xforward ?? null, JSON.parse(arg), where);
            break;
          default:
            throw new Error(`${where}: unknown step ${step.key}`);
        }
      }
    }
    send();
    input.push(null);
    await session;
    assertEquals(output.rest, "", `${file}: unmatched server output`);
    for (const x of dialog.expect) {
      if (x.kind !== "log" && x.kind !== "no-log") {
        throw new Error(`${file}:${x.line}: ${x.kind}: needs postwarden test's instance`);
      }
      const found = logs.some((l) => x.pattern.test(l));
      assert(
        x.kind === "log" ? found : !found,
        `${file}:${x.line}: ${x.kind}: ${x.source}\nlog:\n${logs.join("\n")}`,
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
    "log: disconnect from localhost\\[127\\.0\\.0\\.1\\] ehlo=1 mail=1 rcpt=1200 data=1 commands=1203$",
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
