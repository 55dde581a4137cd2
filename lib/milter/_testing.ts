/**
 * A scriptable fake milter for tests (smtpd, cleanup and this folder's):
 * a server on 127.0.0.1 (or a UNIX socket) that answers option
 * negotiation as told, records every packet it gets, and answers each
 * command with whatever the test's handler returns (reply packets built
 * with {@link reply}, nothing at all for a timeout, "close" to hang up).
 * Without a handler, or when it returns undefined, every command that
 * awaits a reply gets SMFIR_CONTINUE.
 *
 * ```ts
 * import { FakeMilter, reply } from "../../lib/milter/_testing.ts";
 * import { MilterSession } from "../../lib/milter/mod.ts";
 * import {
 *   decodeStrings,
 *   SMFIC_BODYEOB,
 *   SMFIC_RCPT,
 *   SMFIP_NOHELO,
 * } from "../../lib/milter/protocol.ts";
 *
 * const milter = FakeMilter.start({
 *   optneg: { protocol: SMFIP_NOHELO },
 *   handler(cmd, data) {
 *     if (cmd === SMFIC_RCPT && decodeStrings(data)[0] === "<spam@example.com>") {
 *       return [reply.replyCode("550 5.7.1 Go away")];
 *     }
 *     if (cmd === SMFIC_BODYEOB) return [reply.addHeader("X-Seen", "yes"), reply.accept()];
 *   },
 * });
 * const session = await MilterSession.open(milter.settings(), { macro: () => undefined });
 * await session.connect("client.example", "4", 40000, "192.0.2.1");
 * await session.mail(["<sender@example.com>"]);
 * assertEquals(await session.rcpt(["<spam@example.com>"]), {
 *   action: "reject",
 *   reply: { code: 550, dsn: "5.7.1", text: "Go away" },
 * });
 * await session.quit();
 * await milter.idle(); // the server has read all the session sent
 * assertEquals(milter.commands(), ["O", "C", "M", "R", "Q"]);
 * await milter.close();
 * ```
 *
 * Test helper: not for production code.
 *
 * @module
 */

import { concat } from "../bytes/mod.ts";
import type { MilterEndpoint, MilterSettings } from "./config.ts";
import {
  decodeOptneg,
  decodeStrings,
  encodePacket,
  encodeString,
  type MilterPacket,
  PacketReader,
  SMFIC_ABORT,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MACRO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_QUIT,
  SMFIC_QUIT_NC,
  SMFIC_RCPT,
  SMFIC_UNKNOWN,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_DATA,
  SMFIP_NR_EOH,
  SMFIP_NR_HDR,
  SMFIP_NR_HELO,
  SMFIP_NR_MAIL,
  SMFIP_NR_RCPT,
  SMFIP_NR_UNKN,
  SMFIR_ACCEPT,
  SMFIR_ADDHEADER,
  SMFIR_ADDRCPT,
  SMFIR_ADDRCPT_PAR,
  SMFIR_CHGFROM,
  SMFIR_CHGHEADER,
  SMFIR_CONTINUE,
  SMFIR_DELRCPT,
  SMFIR_DISCARD,
  SMFIR_INSHEADER,
  SMFIR_PROGRESS,
  SMFIR_QUARANTINE,
  SMFIR_REJECT,
  SMFIR_REPLBODY,
  SMFIR_REPLYCODE,
  SMFIR_SHUTDOWN,
  SMFIR_SKIP,
  SMFIR_TEMPFAIL,
} from "./protocol.ts";

const encoder = new TextEncoder();

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

/**
 * What the fake milter answers to SMFIC_OPTNEG. The defaults are what
 * libmilter answers: the lower of its version (6) and the MTA's, and
 * (here) every action the MTA offers.
 */
export interface FakeOptneg {
  /** @default min(6, offered) */
  version?: number;
  /** SMFIF_* bits. @default the actions offered */
  actions?: number;
  /** SMFIP_* bits: steps not wanted, not answered. @default 0 */
  protocol?: number;
  /** Macro lists asked for: [SMFIM_* stage, "names separated by spaces"]. @default [] */
  symlists?: [number, string][];
}

/** Reply packets for handlers to return. */
export const reply = {
  continue: (): Uint8Array => encodePacket(SMFIR_CONTINUE),
  accept: (): Uint8Array => encodePacket(SMFIR_ACCEPT),
  reject: (): Uint8Array => encodePacket(SMFIR_REJECT),
  tempfail: (): Uint8Array => encodePacket(SMFIR_TEMPFAIL),
  discard: (): Uint8Array => encodePacket(SMFIR_DISCARD),
  skip: (): Uint8Array => encodePacket(SMFIR_SKIP),
  progress: (): Uint8Array => encodePacket(SMFIR_PROGRESS),
  shutdown: (): Uint8Array => encodePacket(SMFIR_SHUTDOWN),
  /** SMFIR_REPLYCODE with the text as given (NUL added). */
  replyCode: (text: string): Uint8Array => encodePacket(SMFIR_REPLYCODE, encodeString(text)),
  addHeader: (name: string, value: string): Uint8Array =>
    encodePacket(SMFIR_ADDHEADER, encodeString(name), encodeString(value)),
  insertHeader: (index: number, name: string, value: string): Uint8Array =>
    encodePacket(SMFIR_INSHEADER, u32(index), encodeString(name), encodeString(value)),
  changeHeader: (index: number, name: string, value: string): Uint8Array =>
    encodePacket(SMFIR_CHGHEADER, u32(index), encodeString(name), encodeString(value)),
  addRcpt: (address: string): Uint8Array => encodePacket(SMFIR_ADDRCPT, encodeString(address)),
  addRcptPar: (address: string, args?: string): Uint8Array =>
    encodePacket(SMFIR_ADDRCPT_PAR, encodeString(address), ...optional(args)),
  deleteRcpt: (address: string): Uint8Array => encodePacket(SMFIR_DELRCPT, encodeString(address)),
  changeFrom: (address: string, args?: string): Uint8Array =>
    encodePacket(SMFIR_CHGFROM, encodeString(address), ...optional(args)),
  replaceBody: (body: Uint8Array | string): Uint8Array =>
    encodePacket(SMFIR_REPLBODY, typeof body === "string" ? encoder.encode(body) : body),
  quarantine: (reason: string): Uint8Array => encodePacket(SMFIR_QUARANTINE, encodeString(reason)),
  /** The OPTNEG answer; version 6 and every action unless given. */
  optneg: (o: FakeOptneg = {}): Uint8Array =>
    encodePacket(
      SMFIC_OPTNEG,
      u32(o.version ?? 6),
      u32(o.actions ?? 0x1ff),
      u32(o.protocol ?? 0),
      ...(o.symlists ?? []).flatMap(([stage, names]) => [u32(stage), encodeString(names)]),
    ),
  /** Any packet, for garbage. */
  packet: (cmd: string, data: Uint8Array = new Uint8Array(0)): Uint8Array =>
    encodePacket(cmd, data),
};

function optional(s: string | undefined): Uint8Array[] {
  return s === undefined ? [] : [encodeString(s)];
}

/** One packet the fake milter received. */
export interface FakeReceived {
  /** Which connection, from 0. */
  connection: number;
  /** The command character (SMFIC_*). */
  cmd: string;
  data: Uint8Array;
  /**
   * The data as strings: NUL-separated strings for most commands;
   * [hostname, family, port, address] for SMFIC_CONNECT; for SMFIC_MACRO
   * the command it is for, then names and values; [] for binary data.
   */
  args: string[];
}

/** What a handler knows about its connection. */
export interface FakeMilterState {
  connection: number;
  /**
   * The OPTNEG answer the default handling uses (which NR_* commands get
   * no reply); a handler answering OPTNEG itself may set it.
   */
  optneg: FakeOptneg;
  /** The latest macros received for each command character. */
  macros: Map<string, Record<string, string>>;
  /** Writes packets now (a progress before a slow answer). */
  send(...packets: Uint8Array[]): Promise<void>;
}

/** A handler's answer: packets to send ([] for silence), "close", or undefined for the default. */
export type FakeHandlerResult = Uint8Array[] | "close" | undefined | void;

/** Answers one command. */
export type FakeHandler = (
  cmd: string,
  data: Uint8Array,
  state: FakeMilterState,
) => FakeHandlerResult | Promise<FakeHandlerResult>;

/** Options for {@link FakeMilter.start}. */
export interface FakeMilterOptions {
  /** Listen on this UNIX socket path instead of 127.0.0.1 with a free port. */
  path?: string;
  optneg?: FakeOptneg;
  handler?: FakeHandler;
}

/** Which NR_* flag means no reply to each command. */
const NO_REPLY_FLAG: Record<string, number> = {
  [SMFIC_CONNECT]: SMFIP_NR_CONN,
  [SMFIC_HELO]: SMFIP_NR_HELO,
  [SMFIC_MAIL]: SMFIP_NR_MAIL,
  [SMFIC_RCPT]: SMFIP_NR_RCPT,
  [SMFIC_DATA]: SMFIP_NR_DATA,
  [SMFIC_UNKNOWN]: SMFIP_NR_UNKN,
  [SMFIC_HEADER]: SMFIP_NR_HDR,
  [SMFIC_EOH]: SMFIP_NR_EOH,
  [SMFIC_BODY]: SMFIP_NR_BODY,
  [SMFIC_BODYEOB]: 0,
};

/** A fake milter server; see the module documentation. */
export class FakeMilter {
  /** The milter's name as configured: `inet:127.0.0.1:PORT` or `unix:PATH`. */
  readonly name: string;
  readonly endpoint: MilterEndpoint;
  /** Every packet received, in order, on every connection. */
  readonly received: FakeReceived[] = [];
  readonly #listener: Deno.Listener;
  readonly #opts: FakeMilterOptions;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  #connections = 0;
  readonly #accepting: Promise<void>;

  private constructor(opts: FakeMilterOptions) {
    this.#opts = opts;
    if (opts.path) {
      this.#listener = Deno.listen({ transport: "unix", path: opts.path });
      this.endpoint = { kind: "unix", path: opts.path };
      this.name = `unix:${opts.path}`;
    } else {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      this.#listener = l;
      this.endpoint = { kind: "inet", host: "127.0.0.1", port: l.addr.port };
      this.name = `inet:127.0.0.1:${l.addr.port}`;
    }
    this.#accepting = this.#accept();
  }

  /** Starts listening. */
  static start(opts: FakeMilterOptions = {}): FakeMilter {
    return new FakeMilter(opts);
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /**
   * Settings for a session with this milter: 2s timeouts, protocol 6,
   * tempfail, no macros; `overrides` replace any of them.
   */
  settings(overrides: Partial<MilterSettings> = {}): MilterSettings {
    return {
      name: this.name,
      endpoint: this.endpoint,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 2000,
      contentTimeoutMs: 2000,
      defaultAction: "tempfail",
      protocol: 6,
      noHeaderReply: false,
      macros: {
        connect: [],
        helo: [],
        mail: [],
        rcpt: [],
        data: [],
        eoh: [],
        eom: [],
        unknown: [],
      },
      ...overrides,
    };
  }

  /** The command characters received (macros included), on one connection or all. */
  commands(connection?: number): string[] {
    return this.received
      .filter((r) => connection === undefined || r.connection === connection)
      .map((r) => r.cmd);
  }

  /** The macros last sent before command `cmd` (an SMFIC_* character), as name => value. */
  macrosFor(cmd: string, connection?: number): Record<string, string> | undefined {
    const packets = this.received.filter((r) =>
      r.cmd === SMFIC_MACRO && r.args[0] === cmd &&
      (connection === undefined || r.connection === connection)
    );
    const last = packets[packets.length - 1];
    return last && pairsOf(last.args.slice(1));
  }

  /**
   * Resolves when every connection so far has ended (the client hung up):
   * all it sent is then in {@link received}.
   */
  async idle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
  }

  /** Stops listening, hangs up every connection and waits for their tasks to end. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const c of this.#conns) closeQuietly(c);
    await this.#accepting;
    await Promise.all([...this.#tasks]);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      if (conn.remoteAddr.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
      const task = this.#serve(conn, this.#connections++).finally(() => {
        this.#tasks.delete(task);
        this.#conns.delete(conn);
        closeQuietly(conn);
      });
      this.#conns.add(conn);
      this.#tasks.add(task);
    }
  }

  async #serve(conn: Deno.Conn, connection: number): Promise<void> {
    const reader = new PacketReader(1 << 24);
    const buf = new Uint8Array(65536);
    const write = async (packets: Uint8Array[]) => {
      // One write, as a milter does: small separate writes would wait on Nagle.
      const out = concat(packets);
      for (let off = 0; off < out.length;) off += await conn.write(out.subarray(off));
    };
    const state: FakeMilterState = {
      connection,
      optneg: this.#opts.optneg ?? {},
      macros: new Map(),
      send: (...packets) => write(packets),
    };
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        reader.push(buf.subarray(0, n));
        for (let p = reader.next(); p; p = reader.next()) {
          const args = argsOf(p.cmd, p.data);
          this.received.push({ connection, cmd: p.cmd, data: p.data, args });
          if (p.cmd === SMFIC_MACRO) state.macros.set(args[0], pairsOf(args.slice(1)));
          const got = await this.#opts.handler?.(p.cmd, p.data, state);
          const out = got ?? this.#default(p, state);
          if (out === "close") return;
          await write(out);
          if (p.cmd === SMFIC_QUIT) return;
        }
      }
    } catch {
      // The client hung up or sent garbage: this connection is over.
    }
  }

  #default({ cmd, data }: MilterPacket, state: FakeMilterState): Uint8Array[] {
    if (cmd === SMFIC_OPTNEG) {
      const offer = decodeOptneg(data);
      return [reply.optneg({
        ...state.optneg,
        version: state.optneg.version ?? Math.min(6, offer.version),
        actions: state.optneg.actions ?? offer.actions,
      })];
    }
    if ([SMFIC_MACRO, SMFIC_ABORT, SMFIC_QUIT, SMFIC_QUIT_NC].includes(cmd)) return [];
    const nr = NO_REPLY_FLAG[cmd];
    if (nr === undefined || (nr & (state.optneg.protocol ?? 0)) !== 0) return [];
    return [reply.continue()];
  }
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

function pairsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]] = list[i + 1];
  return out;
}

/** The strings of a command's data, for assertions; [] when they do not parse. */
function argsOf(cmd: string, data: Uint8Array): string[] {
  try {
    if (cmd === SMFIC_BODY || cmd === SMFIC_OPTNEG) return [];
    if (cmd === SMFIC_MACRO) {
      return [String.fromCharCode(data[0]), ...decodeStrings(data.subarray(1))];
    }
    if (cmd === SMFIC_CONNECT) {
      const nul = data.indexOf(0);
      const host = decodeStrings(data.subarray(0, nul + 1))[0];
      const family = String.fromCharCode(data[nul + 1]);
      if (family === "U") return [host, family];
      const port = new DataView(data.buffer, data.byteOffset + nul + 2, 2).getUint16(0);
      return [host, family, String(port), ...decodeStrings(data.subarray(nul + 4))];
    }
    return decodeStrings(data);
  } catch {
    return [];
  }
}
