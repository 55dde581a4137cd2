/**
 * A small scripted SMTP server for the smtp agent's tests: listens on
 * 127.0.0.1 port 0 (or where it is told), answers EHLO/HELO/MAIL/RCPT/DATA/RSET/QUIT with
 * replies the test can replace, and records connections, command batches
 * (commands that arrived in one read, to see PIPELINING) and messages
 * (raw dot-stuffed data and the unstuffed content). With `tls` it offers
 * STARTTLS (smtpd's TLS code, daemons/smtpd/tls.ts, serves the handshake);
 * with `auth` it offers AUTH and checks PLAIN, LOGIN and CRAM-MD5
 * credentials. Also builds a ServiceContext by hand and queues messages
 * for delivery requests. Test-only.
 */
import { makeConfig } from "../../lib/config/mod.ts";
import type { DeliveryRequest, RecipientStatus } from "../../lib/deliver/mod.ts";
import { Logger } from "../../lib/log/mod.ts";
import {
  DirSyncer,
  newQueueId,
  QueueDir,
  QueueFile,
  QueueWriter,
  type Recipient,
} from "../../lib/queue/mod.ts";
import { mapsOpener, type ServiceContext } from "../../lib/service/mod.ts";
import { TlsServer } from "../smtpd/tls.ts";
import type { SmtpdTlsPolicy } from "../../lib/tls/policy.ts";

/** Replies the test may override; a function gets the command argument. */
export interface FakeServerScript {
  greeting?: string;
  /** EHLO keywords; null: EHLO answered "502 5.5.2 Error: command not recognized". */
  ehlo?: string[] | null;
  mail?: (arg: string) => string;
  rcpt?: (arg: string) => string;
  data?: string;
  /** Reply to end of data; null: never answer (timeout tests). */
  final?: ((msg: FakeMessage) => string) | null;
  /** Close the connection after answering end of data. */
  closeAfterMessage?: boolean;
  /** Offer STARTTLS with this certificate chain and key (PEM). */
  tls?: { certs: string; key: string };
  /** Reply to STARTTLS instead of starting TLS (e.g. "454 4.7.0 TLS not available"). */
  starttls?: string;
  /** After "220" to STARTTLS: send these bytes in plaintext first (an injection), then TLS. */
  starttlsInject?: string;
  /** After "220" to STARTTLS: answer the handshake with this garbage and close. */
  starttlsGarbage?: string;
  /** After "220" to STARTTLS: never answer the handshake (until the client leaves). */
  starttlsStall?: boolean;
  /** Answer AUTH and every line after it with a new challenge, forever. */
  authLoop?: boolean;
  /** Offer AUTH with these mechanisms and accept these credentials. */
  auth?: { mechanisms: string[]; user: string; password: string; onlyWithTls?: boolean };
}

/** One message as received. */
export interface FakeMessage {
  /** It came over TLS. */
  tls: boolean;
  /** The client had authenticated (the user name). */
  authUser: string | null;
  mailFrom: string;
  rcptTo: string[];
  /** Bytes between the 354 and the final ".", still dot-stuffed, as latin1 string. */
  raw: string;
  /** The content with dot-stuffing removed. */
  content: Uint8Array;
}

const enc = new TextEncoder();

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

function bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The running fake server. */
export class FakeSmtpServer {
  readonly listener: Deno.TcpListener;
  connections = 0;
  readonly messages: FakeMessage[] = [];
  /** Every command line received, in order. */
  readonly commands: string[] = [];
  /** Number of commands per read, for the PIPELINING check. */
  readonly batches: number[] = [];
  /** TLS handshakes completed. */
  tlsSessions = 0;
  /** AUTH outcomes ("ok user" / "failed"). */
  readonly auths: string[] = [];
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #loop: Promise<void>;

  /** `listen`: where to listen. @default 127.0.0.1, a free port */
  constructor(
    readonly script: FakeServerScript = {},
    listen: { hostname: string; port: number } = { hostname: "127.0.0.1", port: 0 },
  ) {
    this.listener = Deno.listen(listen);
    this.#loop = this.#accept();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.listener) {
        this.connections++;
        conn.setNoDelay(true);
        this.#conns.add(conn);
        const t = this.#serve(conn).catch(() => {}).finally(() => {
          this.#conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed
          }
        });
        this.#tasks.add(t);
        t.finally(() => this.#tasks.delete(t));
      }
    } catch {
      // listener closed
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const s = this.script;
    const chunk = new Uint8Array(65536);
    let io = {
      read: async (): Promise<Uint8Array | null> => {
        const n = await conn.read(chunk);
        return n === null ? null : chunk.subarray(0, n);
      },
      write: async (b: Uint8Array) => {
        let off = 0;
        while (off < b.length) off += await conn.write(b.subarray(off));
      },
    };
    const send = (line: string) =>
      io.write(enc.encode(line.endsWith("\r\n") ? line : line + "\r\n"));
    await send(s.greeting ?? "220 fake.test ESMTP");
    if (!(s.greeting ?? "220").startsWith("220")) return;
    let buf = "";
    let inData = false;
    let msg: FakeMessage | null = null;
    let tlsActive = false;
    let authUser: string | null = null;
    /** An AUTH dialog in progress: gets each client line, returns the next reply. */
    let authStep: ((line: string) => Promise<string>) | null = null;
    for (;;) {
      const got = await io.read();
      if (got === null) return;
      buf += latin1(got);
      let batch = 0;
      for (;;) {
        if (inData) {
          const probe = "\r\n" + buf;
          const end = probe.indexOf("\r\n.\r\n");
          if (end < 0) break;
          const raw = probe.slice(2, end + 2);
          buf = probe.slice(end + 5);
          inData = false;
          msg!.raw = raw;
          msg!.content = bytes(raw.replace(/(^|\n)\./g, "$1"));
          this.messages.push(msg!);
          if (s.final === null) continue;
          await send((s.final ?? (() => "250 2.0.0 Ok: queued as FAKE1"))(msg!));
          msg = null;
          if (s.closeAfterMessage) return;
          continue;
        }
        const lf = buf.indexOf("\r\n");
        if (lf < 0) break;
        const line = buf.slice(0, lf);
        buf = buf.slice(lf + 2);
        batch++;
        this.commands.push(line);
        if (authStep) {
          await send(await authStep(line));
          continue;
        }
        const verb = line.split(" ")[0].toUpperCase();
        const arg = line.slice(verb.length).trim();
        switch (verb) {
          case "EHLO":
            if (s.ehlo === null) await send("502 5.5.2 Error: command not recognized");
            else {
              const kw = [
                ...(s.ehlo ?? ["PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES"]),
              ];
              if ((s.tls || s.starttls) && !tlsActive) kw.push("STARTTLS");
              if (s.auth && (tlsActive || !s.auth.onlyWithTls)) {
                kw.push(`AUTH ${s.auth.mechanisms.join(" ")}`);
              }
              const lines = ["fake.test", ...kw];
              await send(
                lines.map((l, i) => `250${i < lines.length - 1 ? "-" : " "}${l}`).join("\r\n"),
              );
            }
            break;
          case "HELO":
            await send("250 fake.test");
            break;
          case "MAIL": {
            const reply = (s.mail ?? (() => "250 2.1.0 Ok"))(arg);
            if (reply.startsWith("2")) {
              msg = {
                tls: tlsActive,
                authUser,
                mailFrom: arg,
                rcptTo: [],
                raw: "",
                content: new Uint8Array(),
              };
            }
            await send(reply);
            break;
          }
          case "RCPT": {
            const reply = (s.rcpt ?? (() => "250 2.1.5 Ok"))(arg);
            if (reply.startsWith("2") && msg) msg.rcptTo.push(arg);
            await send(reply);
            break;
          }
          case "DATA":
            if (!msg || msg.rcptTo.length === 0) await send("554 5.5.1 Error: no valid recipients");
            else {
              const reply = s.data ?? "354 End data with <CR><LF>.<CR><LF>";
              await send(reply);
              if (reply.startsWith("354")) inData = true;
            }
            break;
          case "RSET":
            msg = null;
            await send("250 2.0.0 Ok");
            break;
          case "QUIT":
            await send("221 2.0.0 Bye");
            return;
          case "STARTTLS": {
            if (s.starttls || !s.tls || tlsActive) {
              await send(s.starttls ?? "454 4.7.0 TLS not available");
              break;
            }
            if (s.starttlsStall) {
              await send("220 2.0.0 Ready to start TLS");
              while (await io.read() !== null) {
                // swallow the ClientHello; never answer
              }
              return;
            }
            if (s.starttlsGarbage !== undefined) {
              await send("220 2.0.0 Ready to start TLS");
              await io.write(enc.encode(s.starttlsGarbage));
              return;
            }
            // One write: the injected reply arrives with the 220, as in CVE-2011-0411.
            await send("220 2.0.0 Ready to start TLS\r\n" + (s.starttlsInject ?? ""));
            const server = await TlsServer.create(FAKE_TLS_POLICY, {
              key: s.tls.key,
              certs: s.tls.certs,
              subject: "",
              files: [],
            });
            const r = await server.handshake(conn);
            this.tlsSessions++;
            tlsActive = true;
            buf = "";
            io = { read: () => r.channel.read(), write: (b) => r.channel.write(b) };
            break;
          }
          case "AUTH": {
            const a = s.auth;
            if (!a) {
              await send("502 5.5.2 Error: command not recognized");
              break;
            }
            if (s.authLoop) {
              authStep = () => Promise.resolve("334 Zm9v");
              await send("334 Zm9v");
              break;
            }
            const [mech, initial] = arg.split(" ");
            const check = (user: string, password: string) => {
              const ok = user === a.user && password === a.password;
              this.auths.push(ok ? `ok ${user}` : "failed");
              if (ok) authUser = user;
              authStep = null;
              return ok
                ? "235 2.7.0 Authentication successful"
                : "535 5.7.8 Error: authentication failed: authentication failure";
            };
            const upper = (mech ?? "").toUpperCase();
            if (!a.mechanisms.map((m) => m.toUpperCase()).includes(upper)) {
              await send(
                "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
              );
            } else if (upper === "PLAIN") {
              const decode = (t: string) => atob(t).split("\0");
              if (initial) {
                const [, u, p] = decode(initial);
                await send(check(u, p));
              } else {
                authStep = (l) => {
                  const [, u, p] = decode(l);
                  return Promise.resolve(check(u, p));
                };
                await send("334 ");
              }
            } else if (upper === "LOGIN") {
              let user = "";
              authStep = (l) => {
                if (user === "") {
                  user = atob(l);
                  return Promise.resolve("334 UGFzc3dvcmQ6");
                }
                return Promise.resolve(check(user, atob(l)));
              };
              await send("334 VXNlcm5hbWU6");
            } else if (upper === "CRAM-MD5") {
              const challenge = `<${Date.now()}.1@fake.test>`;
              authStep = async (l) => {
                const [u, digest] = atob(l).split(" ");
                const { createHmac } = await import("node:crypto");
                const want = createHmac("md5", a.password).update(challenge).digest("hex");
                return check(u, digest === want && u === a.user ? a.password : "");
              };
              await send(`334 ${btoa(challenge)}`);
            }
            break;
          }
          default:
            await send("502 5.5.2 Error: command not recognized");
        }
      }
      if (batch > 0) this.batches.push(batch);
    }
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    this.listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    await this.#loop;
    await Promise.allSettled([...this.#tasks]);
  }

  /** Waits until `cond` holds (polling), at most `ms`. */
  async until(cond: () => boolean, ms = 2000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error("condition not reached in time");
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** What the fake server's TLS side needs of smtpd's policy. */
const FAKE_TLS_POLICY: SmtpdTlsPolicy = {
  level: "may",
  wrapper: false,
  authOnly: false,
  certFile: "",
  keyFile: "",
  chainFiles: [],
  minVersion: "TLSv1.2",
  maxVersion: "TLSv1.3",
  receivedHeader: false,
  loglevel: 0,
  handshakeTimeoutMs: 10_000,
};

/** A temp queue, a config, a capturing logger. */
export async function makeContext(mainCf = ""): Promise<ServiceContext & { lines: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "pw-smtp-" });
  const queue = new QueueDir(dir);
  await queue.create();
  const lines: string[] = [];
  // The agent's own address (MX loop detection) is not the fake server's 127.0.0.1.
  const base = `queue_directory = ${dir}\ninet_protocols = ipv4\ninet_interfaces = 127.0.0.254\n`;
  const config = makeConfig(dir, `${base}${mainCf}`, {
    hostname: "test.example",
  });
  const log = new Logger({
    program: "postwarden/smtp",
    hostname: "test.example",
    sinks: [(l) => lines.push(l)],
  });
  return {
    config,
    log,
    queue,
    args: {
      configDir: dir,
      service: "smtp",
      type: "unix",
      overrides: {},
      publicService: false,
    },
    services: [],
    peer: (name: string) => queue.privateSocket(name),
    signal: new AbortController().signal,
    maps: mapsOpener((m) => log.warn(m)),
    lines,
  };
}

/** Envelope details for {@link queueMessage}. */
export interface QueueMessageOptions {
  /** @default "sender@test.example" */
  sender?: string;
  envid?: string;
  ret?: string;
  /** REQUIRETLS (RFC 8689) in the request. */
  requiretls?: true;
}

/** Writes a queue file into active/ and returns a request for it. */
export async function queueMessage(
  ctx: ServiceContext,
  nexthop: string,
  rcpts: (string | Recipient)[],
  content: string | Uint8Array = "Subject: test\r\n\r\nhello\r\n",
  opts: QueueMessageOptions = {},
): Promise<DeliveryRequest> {
  const id = newQueueId();
  const dir = ctx.queue.dir("active");
  const w = new QueueWriter(dir, id, new DirSyncer(dir));
  const now = Date.now();
  const sender = opts.sender ?? "sender@test.example";
  const recipients = rcpts.map((r) => typeof r === "string" ? { address: r } : r);
  await w.begin({ queueId: id, arrival: now, sender }, recipients);
  await w.write(typeof content === "string" ? enc.encode(content) : content);
  await w.commit();
  return {
    op: "deliver",
    queueId: id,
    path: ctx.queue.path("active", id),
    sender,
    transport: "smtp",
    nexthop,
    recipients: recipients.map((r, index) => ({ ...r, index })),
    arrival: now,
    activeAt: now,
    ...(opts.envid !== undefined ? { envid: opts.envid } : {}),
    ...(opts.ret !== undefined ? { ret: opts.ret } : {}),
    ...(opts.requiretls ? { requiretls: true as const } : {}),
  };
}

/**
 * Opens a queue file whose content must not be read (address
 * verification sends no content): reading it throws.
 */
export async function openUnreadable(path: string): Promise<QueueFile> {
  const file = await QueueFile.open(path);
  const unread = () => {
    throw new Error("address verification read the message content");
  };
  file.content = unread;
  file.readContent = unread;
  return file;
}

/** Runs one delivery request through an agent (SmtpAgent) with its queue file open. */
export async function deliverRequest(
  agent: {
    deliver(req: DeliveryRequest, file: QueueFile, ctx: ServiceContext): Promise<RecipientStatus[]>;
  },
  ctx: ServiceContext,
  req: DeliveryRequest,
): Promise<RecipientStatus[]> {
  const file = await QueueFile.open(req.path);
  try {
    return await agent.deliver(req, file, ctx);
  } finally {
    file.close();
  }
}

const testdata = new URL("./testdata/", import.meta.url).pathname;

/**
 * The test certificates in testdata/: TEST_CA signed TEST_TLS's server
 * certificate (mx.test.example, *.wild.test.example); OTHER_CA signed
 * nothing here.
 */
export const TEST_CA = `${testdata}ca.pem`;
export const OTHER_CA = `${testdata}other_ca.pem`;
export const TEST_TLS = {
  certs: Deno.readTextFileSync(`${testdata}server.pem`),
  key: Deno.readTextFileSync(`${testdata}server.key`),
};
