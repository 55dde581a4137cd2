/**
 * sendmail -bs: SMTP on standard input and output, as Postfix's sendmail
 * -bs runs `smtpd -S` (stand-alone mode).
 *
 * The session is smtpd's own (daemons/smtpd/session.ts), run in-process
 * with the same restrictions, replies and limits, for the client
 * "localhost[127.0.0.1]" as Postfix names a stand-alone client. Like
 * Postfix's, which hands each message to postdrop, it writes each accepted
 * message into `maildrop/` as sendmail does (MaildropWriter, durable before
 * the 250 reply, pickup woken) and never talks to cleanup: the user
 * running it has no more rights than plain sendmail gives. The 250 reply
 * names the maildrop file's queue id; pickup gives the message its final
 * queue id, as in Postfix. What the maildrop cannot carry fails closed:
 * an access-table action (HOLD, DISCARD, REDIRECT, BCC, FILTER) on a
 * message gets "451 4.3.0 Error: ... not supported with sendmail -bs"
 * instead of being dropped, and a table the user cannot read fails the
 * lookup (a temporary error), as smtpd's restrictions do.
 *
 * Difference from Postfix: its stand-alone smtpd skips the restrictions
 * (smtpd_*_restrictions, reject_unlisted_*, the address syntax check) for
 * the local user, who could submit with plain sendmail anyway; here they
 * apply as to any client localhost[127.0.0.1] (the stock configuration
 * permits it through mynetworks), which can only refuse more.
 *
 * Not offered: STARTTLS and AUTH (no network between the user and the
 * session), XCLIENT/XFORWARD, client limits (anvil). As in Postfix's
 * stand-alone mode, commands sent ahead of the replies are not refused
 * (smtpd_forbid_unauth_pipelining does not apply): a script writes the
 * whole dialog at once.
 *
 * Logging goes to maillog_file when the user may append to it, else
 * nowhere (stdout carries the SMTP replies; Postfix logs to syslog).
 *
 * Parameters: those of smtpd's session and restrictions, queue_directory,
 * maillog_file.
 *
 * @module
 */
import { type Config, configDirFrom, configPath, loadConfig } from "../lib/config/mod.ts";
import type {
  CleanupEnvelope,
  CleanupResult,
  CleanupSink,
  MessageActions,
} from "../lib/cleanup/client.ts";
import { fileSink, Logger, type LogSink } from "../lib/log/mod.ts";
import { Maps } from "../lib/maps/mod.ts";
import { QueueDir, type Recipient } from "../lib/queue/mod.ts";
import { Resolver } from "../lib/resolve/mod.ts";
import { type MaildropAttrs, newMaildropName } from "../daemons/pickup/maildrop.ts";
import { protocolPolicy } from "../daemons/smtpd/protocol.ts";
import { listedContext } from "../daemons/smtpd/recipients.ts";
import { resolveFor, restrictionContext } from "../daemons/smtpd/restrictions.ts";
import { runSession } from "../daemons/smtpd/session.ts";
import { MaildropWriter, syncEntry } from "./_maildrop_writer.ts";
import type { SendmailIo, SendmailOptions } from "./sendmail.ts";

/** sendmail's exit statuses here: 0, or EX_TEMPFAIL for a fatal error. */
const EX_TEMPFAIL = 75;

/**
 * One message of the session, written to maildrop/ instead of handed to
 * cleanup (the {@link CleanupSink} smtpd's session writes to).
 */
export class MaildropSink implements CleanupSink {
  readonly name = newMaildropName();
  readonly queueId = this.name.slice(0, this.name.indexOf("."));
  #writer: MaildropWriter | null = null;
  #unsupported: string | null = null;
  #failed: Error | null = null;

  constructor(readonly q: QueueDir, readonly mode: number, readonly uid: number) {}

  envelope(env: CleanupEnvelope): void {
    if (hasActions(env.actions)) this.#unsupported = "access table actions";
    const attrs: MaildropAttrs = { origin: "sendmail", uid: this.uid };
    if (env.attrs?.envid) attrs.envid = env.attrs.envid;
    if (env.attrs?.ret) attrs.ret = env.attrs.ret;
    const recipients: Recipient[] = env.recipients.map((r) => {
      const x: Recipient = { address: r.address };
      if (r.notify) x.notify = r.notify;
      if (r.orcpt) x.orcpt = r.orcpt;
      return x;
    });
    try {
      this.#writer = MaildropWriter.create(
        this.q.dir("maildrop"),
        this.name,
        this.mode,
        { queueId: this.queueId, arrival: Date.now(), sender: env.sender, attrs },
        recipients,
      );
    } catch (e) {
      this.#failed = e as Error;
    }
  }

  lateActions(actions: MessageActions): void {
    if (hasActions(actions)) this.#unsupported = "access table actions";
  }

  // deno-lint-ignore require-await -- the sink's interface is async (cleanup's is)
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (!this.#writer) throw new Error("write before envelope");
    this.#writer.write(chunk);
  }

  async finish(): Promise<CleanupResult> {
    const w = this.#writer;
    if (this.#failed || !w) {
      w?.abort();
      throw this.#failed ?? new Error("no envelope");
    }
    if (this.#unsupported) {
      w.abort();
      return {
        status: "error",
        code: 451,
        dsn: "4.3.0",
        text: `Error: ${this.#unsupported} are not supported with sendmail -bs`,
      };
    }
    w.commit();
    try {
      await syncEntry(this.q);
    } catch (e) {
      try {
        Deno.removeSync(w.path);
      } catch {
        // already picked up
      }
      throw e;
    }
    return { status: "ok", queueId: this.queueId };
  }

  abort(): void {
    this.#writer?.abort();
  }
}

function hasActions(a: MessageActions | undefined): boolean {
  return !!a &&
    !!(a.hold || a.discard || a.redirect || a.filter || a.bcc?.length || a.edits?.length ||
      a.replaceBody || a.quarantine !== undefined);
}

/** Appends to maillog_file when this user may; no log otherwise. */
function standaloneLogger(cfg: Config): Logger {
  const sinks: LogSink[] = [];
  const file = cfg.str("maillog_file");
  if (file) {
    try {
      sinks.push(fileSink(file));
    } catch {
      // not ours to write: Postfix's stand-alone smtpd logs to syslog
    }
  }
  return new Logger({
    program: `${cfg.str("syslog_name")}/smtpd`,
    hostname: cfg.str("myhostname"),
    sinks,
  });
}

/** Runs sendmail -bs: one SMTP session on `io.stdin` and standard output. */
export async function standalone(opts: SendmailOptions, io: SendmailIo): Promise<number> {
  let cfg: Config;
  let q: QueueDir;
  try {
    cfg = await loadConfig(configDirFrom({ c: opts.configDir }, io.env), { hostname: io.hostname });
    q = new QueueDir(configPath(cfg, "queue_directory"));
  } catch (e) {
    io.err(`sendmail: fatal: ${(e as Error).message}`);
    return EX_TEMPFAIL;
  }
  let mode: number;
  try {
    const st = await Deno.stat(q.dir("maildrop"));
    if (!st.isDirectory) throw new Error("not a directory");
    mode = (st.mode ?? 0) & 0o2000 ? 0o640 : 0o644;
  } catch (e) {
    io.err(`sendmail: fatal: queue directory ${q.dir("maildrop")}: ${(e as Error).message}`);
    return EX_TEMPFAIL;
  }
  const log = standaloneLogger(cfg);
  const warn = (m: string) => log.warn(m);
  const openMaps = (title: string, value: string) => Maps.open(title, value, { warn });
  const resolver = Resolver.fromConfig(cfg, { warn, openMaps });
  const restrictions = restrictionContext(cfg, warn, resolver, {
    openMaps,
    info: (m) => log.info(m),
  });
  const r = restrictions;
  restrictions.listed = listedContext(
    cfg,
    resolver,
    r.rewrite,
    openMaps,
    (address, sender) => resolveFor(r, sender, address),
  );
  const uid = io.uid ?? (() => {
    try {
      return Deno.uid() ?? -1;
    } catch {
      return -1;
    }
  })();
  const reader = io.stdin.getReader();
  const out = (io.stdout ?? Deno.stdout.writable).getWriter();
  try {
    await runSession({
      config: cfg,
      log,
      client: { name: "localhost", addr: "127.0.0.1", port: 0 },
      read: async () => {
        const { value, done } = await reader.read();
        return done ? null : value;
      },
      write: (bytes) => out.write(bytes),
      openCleanup: () => Promise.resolve(new MaildropSink(q, mode, uid)),
      restrictions,
      listed: restrictions.listed,
      auth: null,
      // A script's whole dialog is on stdin at once; Postfix's stand-alone mode does not
      // count that as pipelining (its SMTPD_STAND_ALONE checks).
      protocol: { ...protocolPolicy(cfg, openMaps), forbidUnauthPipelining: false },
    });
  } finally {
    reader.releaseLock();
    await out.close().catch(() => {});
  }
  return 0;
}
