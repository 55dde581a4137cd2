/**
 * `postwarden test`: runs test files (format.ts) against a configuration
 * in an ephemeral instance (instance.ts) and says, per test, whether the
 * configuration did what the file expects; {@link report} writes the
 * results for a person or for CI (TAP).
 *
 * Tests run one after another on one instance (its start is the slow
 * part). A test's messages are those its dialog got "queued as" replies
 * for; after the dialog the runner waits until each has settled (delivered
 * into the instance's mailboxes or its sink, bounced, deferred or held:
 * outcome.ts) and checks the expectations against the log lines and the
 * copies. The test zone is the union of every file's `dns:` records.
 *
 * @module
 */
import { loadConfig } from "../config/mod.ts";
import type { Zone, ZoneName } from "../dns/server.ts";
import { Resolver } from "../resolve/mod.ts";
import { type Ephemeral, startEphemeral } from "./instance.ts";
import { type ByteStream, connDuplex, socketStream } from "../tls/duplex.ts";
import {
  isServer,
  logText,
  type Outcome,
  outcomeOf,
  statusFor,
  type StatusLine,
  statusSummary,
} from "./outcome.ts";
import { parseTestFile, takeReply, type TestFile, TestFormatError, unescape } from "./format.ts";

/** What came of one test. */
export interface TestResult {
  name: string;
  ok: boolean;
  /** Why it failed, each "line N: ..." where a line is to blame. */
  failures: string[];
  ms: number;
  /**
   * With --explain: what decided, in order: each restriction smtpd
   * evaluated ("explain: ..." log lines, postwarden_explain), its
   * rejections, and the route of each queued recipient with the rule that
   * chose it.
   */
  explain?: string[];
}

/** Options for {@link runTests}. */
export interface RunOptions {
  /** Collect each test's {@link TestResult.explain}. */
  explain?: boolean;
}

/** How long the runner waits for one server reply. */
const REPLY_MS = 30_000;
/** Queue folders a message may be in. */
const FOLDERS = ["incoming", "active", "deferred", "hold"];
/** How long the runner waits for a test's messages to settle. */
const SETTLE_MS = 30_000;

/** The test files under each path (a file, or the `*.dialog` files of a directory), sorted. */
export async function findTestFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const st = await Deno.stat(p);
    if (st.isFile) {
      out.push(p);
      continue;
    }
    const here: string[] = [];
    for await (const e of Deno.readDir(p)) {
      if (e.isFile && e.name.endsWith(".dialog")) here.push(`${p.replace(/\/$/, "")}/${e.name}`);
    }
    out.push(...here.sort());
  }
  return out;
}

/**
 * A file's name as the results show it: relative to the working directory
 * when below it, else to the configuration directory's parent when below
 * that ("mail/tests/x.dialog" when CI runs Postwarden from its own checkout).
 */
function displayName(path: string, configDir?: string): string {
  const cwd = Deno.cwd();
  if (path.startsWith(`${cwd}/`)) return path.slice(cwd.length + 1);
  const abs = configDir && (configDir.startsWith("/") ? configDir : `${cwd}/${configDir}`)
    .replace(/\/+$/, "");
  const parent = abs ? abs.slice(0, abs.lastIndexOf("/")) : "";
  return abs && path.startsWith(`${abs}/`) ? path.slice(parent.length + 1) : path;
}

/** The test zone: every file's records. */
export function zoneOf(tests: TestFile[]): Zone {
  const names: Record<string, ZoneName> = {};
  for (const t of tests) {
    for (const r of t.dns) {
      const n = names[r.name] ??= {};
      const list = (n[r.type] ??= []) as (string | [number, string])[];
      if (!list.some((v) => JSON.stringify(v) === JSON.stringify(r.value))) list.push(r.value);
    }
  }
  return { names };
}

/** Server replies on a connection, one full (multi-line) reply at a time. */
class Replies {
  #buf = "";
  #conn: Pick<ByteStream, "read">;
  #decoder = new TextDecoder();
  constructor(conn: Pick<ByteStream, "read">) {
    this.#conn = conn;
  }

  /** Reads from `conn` from now on (after STARTTLS); what was buffered is dropped and returned. */
  switchTo(conn: Pick<ByteStream, "read">): string {
    const left = this.#buf;
    this.#buf = "";
    this.#conn = conn;
    return left;
  }

  /** The next reply, lines joined by "\n"; null when the server closed first. */
  async next(ms = REPLY_MS): Promise<string | null> {
    const end = Date.now() + ms;
    for (;;) {
      const r = takeReply(this.#buf);
      if (r) {
        this.#buf = r.rest;
        return r.reply;
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no reply within ${ms / 1000} s`);
      const chunk = new Uint8Array(16384);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#conn.read(chunk),
        new Promise<"late">((r) => timer = setTimeout(() => r("late"), left)),
      ]).finally(() => clearTimeout(timer));
      if (n === "late") continue;
      if (n === null) return null;
      this.#buf += this.#decoder.decode(chunk.subarray(0, n), { stream: true });
    }
  }
}

/**
 * The client side of STARTTLS for a dialog's `tls:` step. The server's
 * certificate is not checked: a test is about the configuration, and the
 * instance's certificate is whatever the admin's main.cf names.
 */
async function startTls(conn: Deno.Conn): Promise<ByteStream & { protocol: string }> {
  const tls = await import("node:tls");
  const { Duplex } = await import("node:stream");
  const socket = tls.connect({
    socket: connDuplex(Duplex, conn, { closeOnDestroy: true }),
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  let failure: Error | null = null;
  socket.on("error", (e: Error) => failure ??= e);
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", () => resolve());
    socket.once("error", (e: Error) => reject(new Error(`TLS handshake: ${e.message}`)));
    socket.once("close", () => reject(new Error("TLS handshake: lost connection")));
  });
  return { ...socketStream(socket, () => failure), protocol: socket.getProtocol() ?? "TLS" };
}

/** XCLIENT's value for a client: Postfix's forms for unknown names and IPv6 addresses. */
function xclient(c: { name: string; addr: string }): string {
  const name = c.name === "unknown" ? "[UNAVAILABLE]" : c.name;
  const addr = c.addr.includes(":") ? `IPV6:${c.addr}` : c.addr;
  return `XCLIENT NAME=${name} ADDR=${addr}`;
}

/** Queue id -> the folder its file is in, for every message in the queue now. */
async function queueFolders(inst: Ephemeral): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of FOLDERS) {
    const walk = async (dir: string): Promise<void> => {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(`${dir}/${e.name}`);
        else if (e.isFile) out.set(e.name, f);
      }
    };
    await walk(`${inst.queue}/${f}`).catch(() => {});
  }
  return out;
}

async function logSize(inst: Ephemeral): Promise<number> {
  return (await Deno.stat(inst.maillog).catch(() => ({ size: 0 }))).size;
}

/** A dialog on the test's service: XCLIENT (when the test names a client) is done. */
interface Dialog {
  replies: Replies;
  /** Sends a line (CRLF added). */
  send(text: string): Promise<number>;
  /** Sends text as it is. */
  sendRaw(text: string): Promise<number>;
  /** Ends the client's side (the whole TLS session, after STARTTLS). */
  closeWrite(): Promise<void>;
  /** The TLS handshake after the server's 220 to STARTTLS; then everything goes through TLS. */
  starttls(): Promise<void>;
  close(): void;
}

/** Connects for a test; a string says why it cannot. */
async function openDialog(inst: Ephemeral, t: TestFile): Promise<Dialog | string> {
  const service = t.service ?? (inst.ports.has("smtp") ? "smtp" : inst.smtpd[0]);
  const port = service === undefined ? undefined : inst.ports.get(service);
  if (port === undefined) return `no inet service ${service ?? "running smtpd"} in master.cf`;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const replies = new Replies(conn);
  let stream: Pick<ByteStream, "write" | "close"> = conn;
  const sendRaw = (text: string) => stream.write(new TextEncoder().encode(text));
  const send = (text: string) => sendRaw(`${text}\r\n`);
  const closeWrite = async () => {
    if (stream === conn) await conn.closeWrite();
    else stream.close();
  };
  const close = () => {
    try {
      stream.close();
    } catch {
      // closed
    }
  };
  const starttls = async () => {
    if (stream !== conn) throw new Error("TLS is already on");
    const secure = await startTls(conn);
    // Plaintext the server sent after its 220 would be an injection (CVE-2011-0411's kind).
    const left = replies.switchTo(secure);
    stream = secure;
    if (left !== "") throw new Error(`the server sent ${JSON.stringify(left)} before TLS`);
  };
  if (t.client) {
    try {
      // The greeting and EHLO are the runner's; XCLIENT's reply is the test's greeting.
      await replies.next();
      await send("EHLO postwarden-test.invalid");
      await replies.next();
      await send(xclient(t.client));
    } catch (e) {
      close();
      return `XCLIENT: ${(e as Error).message}`;
    }
  }
  return { replies, send, sendRaw, closeWrite, starttls, close };
}

/** The instance's log lines (their text after the program) written since byte `from`. */
async function logSince(inst: Ephemeral, from: number): Promise<string[]> {
  const file = await Deno.open(inst.maillog).catch(() => null);
  if (!file) return [];
  await file.seek(from, Deno.SeekMode.Start);
  const text = new TextDecoder().decode(await new Response(file.readable).arrayBuffer());
  return text.split("\n").filter(Boolean).map(logText);
}

/**
 * Waits until the messages of the dialogs since log byte `from` (smtpd's
 * "ID: client=" lines), and those they caused, have settled; returns
 * their outcome and the log lines since `from`. Unsettled ones after
 * {@link SETTLE_MS} stay in `pending`.
 */
async function settle(
  inst: Ephemeral,
  from: number,
): Promise<{ outcome: Outcome; lines: string[] }> {
  // Let the daemons finish the session (and its log lines).
  await new Promise((r) => setTimeout(r, 300));
  const end = Date.now() + SETTLE_MS;
  for (;;) {
    const lines = await logSince(inst, from);
    const folders = await queueFolders(inst);
    const own = lines.flatMap((l) => /^(\w+): client=/.exec(l)?.[1] ?? []);
    const outcome = outcomeOf(lines, own, (id) => folders.get(id) ?? null);
    if (outcome.pending.length === 0 || Date.now() > end) return { outcome, lines };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sizes of the files below the instance's mailboxes (path -> bytes). */
async function mailboxSizes(inst: Ephemeral): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) out.set(p, (await Deno.stat(p)).size);
    }
  };
  for (const m of inst.mailboxes) await walk(m).catch(() => {});
  return out;
}

/** The header fields of a message's text, continuation lines joined with a space. */
export function headerFields(message: string): string[] {
  const head = message.split(/\r?\n\r?\n/, 1)[0];
  const fields: string[] = [];
  for (const l of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(l) && fields.length) fields[fields.length - 1] += ` ${l.trim()}`;
    else if (/^[^\s:]+:/.test(l)) fields.push(l);
  }
  return fields;
}

/** The messages of mailbox text appended to an mbox ("From " lines) or written as a Maildir file. */
function mailboxMessages(text: string): string[] {
  if (!text.startsWith("From ")) return [text];
  return text.split(/^From .*\r?\n/m).filter((m) => m.trim() !== "");
}

/** Reads the copies delivered since `before` (mailbox sizes) and `sinkFrom` (sink messages). */
async function copiesSince(
  inst: Ephemeral,
  before: Map<string, number>,
  sinkFrom: number,
): Promise<string[]> {
  const copies = inst.sink.messages.slice(sinkFrom).map((m) => m.data);
  for (const [path, size] of await mailboxSizes(inst)) {
    const was = before.get(path) ?? 0;
    if (size <= was) continue;
    const f = await Deno.open(path);
    try {
      await f.seek(was, Deno.SeekMode.Start);
      const buf = new Uint8Array(size - was);
      let got = 0;
      while (got < buf.length) {
        const n = await f.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      copies.push(...mailboxMessages(new TextDecoder().decode(buf.subarray(0, got))));
    } finally {
      f.close();
    }
  }
  return copies;
}

/** Why a status expectation does not hold, or null when it does. */
function statusMismatch(
  x: Extract<TestFile["expect"][number], { rcpt: string }>,
  statuses: StatusLine[],
): string | null {
  const mine = statuses.filter((st) => statusFor(st, x.rcpt));
  const seen = mine.length
    ? ` (${mine.map(statusSummary).join("; ")})`
    : statuses.length
    ? ` (no status for it; seen: ${statuses.map((st) => `<${st.to}>`).join(", ")})`
    : " (no delivery was logged)";
  const hit = (want: string, more: (st: StatusLine) => boolean) =>
    mine.some((st) => st.status === want && more(st));
  switch (x.kind) {
    case "delivered":
      return hit(
          "sent",
          (st) => !isServer(st.relay) && (!x.to || st.to.toLowerCase() === x.to.toLowerCase()),
        )
        ? null
        : `<${x.rcpt}> was not delivered${x.to ? ` to <${x.to}>` : ""}${seen}`;
    case "relayed":
      return hit("sent", (st) =>
          isServer(st.relay) &&
          (x.to!.includes("[")
            ? st.relay.toLowerCase() === x.to!.toLowerCase()
            : st.relay.replace(/\[.*$/, "").toLowerCase() === x.to!.toLowerCase()))
        ? null
        : `<${x.rcpt}> was not relayed to ${x.to}${seen}`;
    case "bounced":
    case "deferred":
      return hit(x.kind, (st) => !x.dsn || st.dsn === x.dsn || st.dsn.startsWith(`${x.dsn}.`))
        ? null
        : `<${x.rcpt}> was not ${x.kind}${x.dsn ? ` with ${x.dsn}` : ""}${seen}`;
    default:
      return null;
  }
}

/** Runs one test on the instance; never throws for what the test finds. */
async function runOne(
  inst: Ephemeral,
  t: TestFile,
  resolver: Resolver,
  opts: RunOptions,
): Promise<TestResult> {
  const start = Date.now();
  const failures: string[] = [];
  const logFrom = await logSize(inst);
  const sinkFrom = inst.sink.messages.length;
  // Copies are read only for header checks: the mailboxes are walked only then.
  const needCopies = t.expect.some((x) => x.kind === "header" || x.kind === "no-header");
  const mailboxesBefore = needCopies ? await mailboxSizes(inst) : new Map<string, number>();
  const dialog = await openDialog(inst, t);
  if (typeof dialog === "string") return { name: t.name, ok: false, failures: [dialog], ms: 0 };
  try {
    for (const step of t.steps) {
      if (step.kind === "c") {
        await dialog.send(step.text);
        continue;
      }
      if (step.kind === "raw") {
        await dialog.sendRaw(step.text);
        continue;
      }
      if (step.kind === "close") {
        await dialog.closeWrite();
        continue;
      }
      if (step.kind === "harness") {
        throw new Error(`line ${step.line}: ${step.key} is not run here`);
      }
      if (step.kind === "tls") {
        try {
          await dialog.starttls();
        } catch (e) {
          failures.push(`line ${step.line}: ${(e as Error).message}`);
          break;
        }
        continue;
      }
      const got = await dialog.replies.next();
      if (got === null) {
        failures.push(
          `line ${step.line}: the server closed the connection; expected ${step.source}`,
        );
        break;
      }
      if (!step.pattern.test(got)) {
        failures.push(`line ${step.line}: expected ${step.source}\n  got ${got}`);
        break;
      }
    }
  } catch (e) {
    failures.push(`dialog: ${(e as Error).message}`);
  } finally {
    dialog.close();
  }
  const { outcome, lines } = await settle(inst, logFrom);
  for (const id of outcome.pending) {
    failures.push(`message ${id} did not settle within ${SETTLE_MS / 1000} s`);
  }
  const rcpts = outcome.queued.filter((q) => q.own).map((q) => q.rcpt);
  const explain: string[] = [];
  if (opts.explain) {
    for (const l of lines) {
      const m = /^(?:[0-9A-Z]+: |NOQUEUE: )?(explain: .*|reject: .*)$/.exec(l);
      // The copy's paths as the admin knows them.
      if (m) explain.push(m[1].replace(/^explain: /, "").replaceAll(inst.conf, inst.source));
    }
    for (const r of rcpts) {
      const route = await resolver.resolve(r).catch((e) => ({ error: (e as Error).message }));
      explain.push(
        "error" in route
          ? `route <${r}>: ${route.error}`
          : `route <${r}>: ${route.transport}:${route.nexthop} (${route.rule ?? "?"})`,
      );
    }
    for (const st of outcome.statuses) explain.push(`delivery ${statusSummary(st)}`);
  }
  const fields = needCopies
    ? (await copiesSince(inst, mailboxesBefore, sinkFrom)).flatMap(headerFields)
    : [];
  for (const x of t.expect) {
    if (x.kind === "queued") {
      const found = rcpts.find((r) => r.toLowerCase() === x.rcpt.toLowerCase());
      if (!found) {
        failures.push(
          `line ${x.line}: no message queued for <${x.rcpt}>` +
            (rcpts.length ? ` (queued for ${rcpts.map((r) => `<${r}>`).join(", ")})` : ""),
        );
      } else if (x.route) {
        const r = await resolver.resolve(found);
        const route = `${r.transport}:${r.nexthop}`;
        if (route !== x.route) {
          failures.push(`line ${x.line}: <${x.rcpt}> is routed to ${route}, not ${x.route}`);
        }
      }
    } else if (x.kind === "not-queued") {
      if (rcpts.length) {
        failures.push(`line ${x.line}: a message was queued for ${rcpts.join(", ")}`);
      }
    } else if (x.kind === "held") {
      if (!outcome.queued.some((q) => q.own && q.held)) {
        failures.push(`line ${x.line}: no message was held`);
      }
    } else if (x.kind === "discarded") {
      if (outcome.discarded.length === 0) {
        failures.push(`line ${x.line}: no message was discarded`);
      }
    } else if ("rcpt" in x) {
      const why = statusMismatch(x, outcome.statuses);
      if (why) failures.push(`line ${x.line}: ${why}`);
    } else if (x.kind === "header" || x.kind === "no-header") {
      const hit = fields.some((f) => x.pattern.test(f));
      if (x.kind === "header" && !hit) {
        failures.push(
          `line ${x.line}: no header field matches ${x.source}` +
            (fields.length ? "" : " (no copy was delivered)"),
        );
      }
      if (x.kind === "no-header" && hit) {
        failures.push(`line ${x.line}: a header field matches ${x.source}`);
      }
    } else if (x.kind === "log" || x.kind === "no-log") {
      const hit = lines.some((l) => x.pattern.test(l));
      if (x.kind === "log" && !hit) {
        failures.push(`line ${x.line}: no log line matches ${x.source}`);
      }
      if (x.kind === "no-log" && hit) {
        failures.push(`line ${x.line}: a log line matches ${x.source}`);
      }
    }
  }
  return {
    name: t.name,
    ok: failures.length === 0,
    failures,
    ms: Date.now() - start,
    ...(opts.explain ? { explain } : {}),
  };
}

/**
 * Reads the test files, starts the configuration once and runs them all.
 * A file that cannot be read fails as a test; a configuration that cannot
 * start throws.
 */
export async function runTests(
  configDir: string,
  files: string[],
  opts: RunOptions = {},
): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const tests: TestFile[] = [];
  for (const f of files) {
    try {
      tests.push(parseTestFile(displayName(f, configDir), await Deno.readTextFile(f)));
    } catch (e) {
      if (!(e instanceof TestFormatError) && !(e instanceof Deno.errors.NotFound)) throw e;
      results.push({
        name: displayName(f, configDir),
        ok: false,
        failures: [(e as Error).message],
        ms: 0,
      });
    }
  }
  if (tests.length === 0) return results;
  const inst = await startEphemeral(configDir, zoneOf(tests), {
    mainCf: opts.explain ? ["postwarden_explain = yes"] : [],
  });
  try {
    const resolver = Resolver.fromConfig(await loadConfig(inst.conf), {
      warn: () => {},
      interfaces: { warn: () => {} },
    });
    for (const t of tests) results.push(await runOne(inst, t, resolver, opts));
  } finally {
    await inst.stop();
  }
  return results;
}

/** The output formats of {@link report}. */
export type ReportFormat = "human" | "tap" | "junit";

/** Text for XML: the five special characters escaped, characters XML 1.0 forbids dropped. */
function xml(s: string): string {
  return s.replace(/[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, "")
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/**
 * JUnit XML as CI systems read it (the common schema of Ant's JUnit task:
 * testsuites > testsuite > testcase, a failure element per failed test).
 */
function junit(results: TestResult[]): string {
  const failed = results.filter((r) => !r.ok).length;
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const total = secs(results.reduce((n, r) => n + r.ms, 0));
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="postwarden test" tests="${results.length}" failures="${failed}" ` +
    `errors="0" time="${total}">`,
    `  <testsuite name="postwarden test" tests="${results.length}" failures="${failed}" ` +
    `errors="0" skipped="0" time="${total}">`,
  ];
  for (const r of results) {
    const head = `    <testcase classname="postwarden.test" name="${xml(r.name)}" time="${
      secs(r.ms)
    }"`;
    if (r.ok) {
      out.push(`${head}/>`);
      continue;
    }
    const first = r.failures[0]?.split("\n")[0] ?? "failed";
    out.push(
      `${head}>`,
      `      <failure message="${xml(first)}" type="failure">${
        xml(r.failures.join("\n"))
      }</failure>`,
      "    </testcase>",
    );
  }
  out.push("  </testsuite>", "</testsuites>");
  return out.join("\n") + "\n";
}

/**
 * The results as text: "human" (one line per test, failures indented),
 * TAP version 13, or JUnit XML.
 */
export function report(results: TestResult[], format: ReportFormat): string {
  if (format === "junit") return junit(results);
  const out: string[] = [];
  if (format === "tap") {
    out.push("TAP version 13", `1..${results.length}`);
    results.forEach((r, i) => {
      out.push(`${r.ok ? "ok" : "not ok"} ${i + 1} - ${r.name}`);
      for (const e of r.explain ?? []) out.push(`# ${e}`);
      if (!r.ok) {
        out.push("  ---", "  message: |");
        for (const f of r.failures) for (const l of f.split("\n")) out.push(`    ${l}`);
        out.push("  ...");
      }
    });
  } else {
    for (const r of results) {
      out.push(`${r.ok ? "ok    " : "FAILED"} ${r.name} (${r.ms} ms)`);
      for (const f of r.failures) for (const l of f.split("\n")) out.push(`       ${l}`);
      for (const e of r.explain ?? []) out.push(`       | ${e}`);
    }
  }
  const failed = results.filter((r) => !r.ok).length;
  const summary = `${results.length - failed} passed, ${failed} failed`;
  out.push(format === "tap" ? `# ${summary}` : summary);
  return out.join("\n") + "\n";
}

/** What came of the mail as expectation lines (the first message's recipients: its statuses). */
export function outcomeLines(outcome: Outcome): string[] {
  const out: string[] = [];
  for (const st of outcome.statuses) {
    // The recipient as the dialog named it, when aliases or forwarding changed it.
    const rcpt = st.origTo ?? st.to;
    // Forwarding is not delivery: the forwarded copy has its own line.
    if (st.status === "sent" && !/^forwarded as /.test(st.text)) {
      out.push(
        isServer(st.relay)
          ? `relayed: ${rcpt} -> ${st.relay}`
          : `delivered: ${rcpt}${st.origTo ? ` -> ${st.to}` : ""}`,
      );
    } else if (st.status === "bounced" || st.status === "deferred") {
      out.push(`${st.status}: ${rcpt} ${st.dsn}`);
    }
  }
  return [...new Set(out)];
}

/** A reply as an s: pattern: multi-line replies by their code, the rest as literal text. */
export function replyPattern(reply: string): string {
  if (reply.includes("\n")) return reply.slice(0, 3);
  return reply.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    .replace(/(queued as )\w+$/, "$1\\w+");
}

/**
 * `postwarden test --record`: runs the c: lines of `input` (with its
 * client:, dns: and service: lines) against the configuration and returns
 * the file with the replies seen as s: lines and what came of it as
 * queued: (with each route) or not-queued: lines; the input's own s: and
 * expectation lines are dropped. One reply is read per command line, and
 * none for the lines between a 354 and the end of the data (".").
 */
export async function recordTest(configDir: string, input: string): Promise<string> {
  const text = await Deno.readTextFile(input);
  const t = parseTestFile(displayName(input, configDir), text);
  const inst = await startEphemeral(configDir, zoneOf([t]));
  try {
    const resolver = Resolver.fromConfig(await loadConfig(inst.conf), {
      warn: () => {},
      interfaces: { warn: () => {} },
    });
    const logFrom = await logSize(inst);
    const dialog = await openDialog(inst, t);
    if (typeof dialog === "string") throw new Error(dialog);
    const out: string[] = [];
    let greeted = false;
    let inData = false;
    let lastCommand = "";
    const observe = async () => {
      const r = await dialog.replies.next();
      if (r === null) throw new Error("the server closed the connection");
      out.push(`s: ${replyPattern(r)}`);
      return r;
    };
    try {
      for (const line of text.replace(/\n$/, "").split("\n")) {
        if (
          /^(s|queued|not-queued|held|discarded|delivered|relayed|bounced|deferred|header|no-header|log|no-log):/
            .test(line)
        ) continue;
        if (/^tls:/.test(line)) {
          out.push(line);
          await dialog.starttls();
          continue;
        }
        // Raw text and the end of the client's side: sent, no reply read for them.
        if (line.startsWith("c! ") || line === "close") {
          out.push(line);
          if (line === "close") await dialog.closeWrite();
          else await dialog.sendRaw(unescape(line.slice(3)));
          continue;
        }
        if (!line.startsWith("c:")) {
          out.push(line);
          continue;
        }
        if (!greeted) {
          await observe();
          greeted = true;
        }
        out.push(line);
        const cmd = unescape(line.replace(/^c: ?/, ""));
        await dialog.send(cmd);
        if (inData) {
          if (cmd === ".") {
            inData = false;
            await observe();
          }
          continue;
        }
        lastCommand = cmd.toUpperCase();
        const r = await observe();
        if (lastCommand === "DATA" && r.startsWith("354")) inData = true;
      }
    } finally {
      dialog.close();
    }
    const { outcome } = await settle(inst, logFrom);
    const own = outcome.queued.filter((q) => q.own);
    if (own.length === 0) out.push("not-queued:");
    for (const q of own) {
      const route = await resolver.resolve(q.rcpt);
      out.push(`queued: ${q.rcpt} -> ${route.transport}:${route.nexthop}`);
    }
    if (own.some((q) => q.held)) out.push("held:");
    if (outcome.discarded.length) out.push("discarded:");
    out.push(...outcomeLines(outcome));
    return out.join("\n") + "\n";
  } finally {
    await inst.stop();
  }
}
