/**
 * One milter's conversation for one SMTP connection (or one message from
 * sendmail), as Postfix's milter8.c holds it: connect, negotiate, report
 * each SMTP event with the macros the milter wants, and read its verdict;
 * at end of message, collect the edits it asks for.
 *
 * Negotiation offers the configured protocol version, every action that
 * version allows and every step it lets a milter leave out. The milter
 * answers with its version (a lower one is spoken down to: no DATA or
 * UNKNOWN to a version 2 milter), the actions it will use (more than
 * offered is refused), the steps it does not want (NO*: not sent) or will
 * not answer (NR_*: sent, no reply awaited) and, optionally, its own
 * macro lists per stage, which replace the configured ones.
 *
 * Before each event goes a SMFIC_MACRO with that stage's macros; Postfix
 * sends them even for an event the milter asked not to get (so the values
 * are there at the next one), except headers, end of headers and body
 * chunks, which are then not reported at all. Body content is gathered
 * into packets of {@link MILTER_CHUNK_SIZE} bytes: a reply comes per
 * packet, not per call.
 *
 * State follows Postfix's. A verdict other than continue on CONNECT or
 * HELO decides the connection: the milter (libmilter) hangs up, and every
 * later call returns the same verdict (continue after an accept) without
 * I/O. ACCEPT or DISCARD on a later event decides the message: the rest
 * of it is not reported, until {@link MilterSession.eom} or
 * {@link MilterSession.abort}. SMFIR_SKIP (version 6, body chunks) stops
 * further events of that kind until another kind is sent.
 *
 * Time limits: the connect timeout for connecting and negotiating; the
 * content timeout for headers, end of headers, body chunks and end of
 * message (the whole message transfer, as Postfix); the command timeout
 * for everything else, writes included. SMFIR_PROGRESS restarts the wait.
 *
 * Any failure (refused, dropped, timeout, malformed packet, a reply or
 * edit out of place) closes the connection and throws {@link MilterError};
 * the session is then dead and every event call throws. The caller applies
 * the milter's default_action ({@link defaultActionReply}); this module
 * decides nothing on the milter's behalf.
 *
 * @module
 */

import { concat } from "../bytes/mod.ts";
import type { Rejection } from "../outcome/mod.ts";
import type { MilterDefaultAction, MilterEndpoint, MilterSettings } from "./config.ts";
import {
  commandName,
  decodeOptneg,
  decodeReply,
  encodeAbort,
  encodeBody,
  encodeConnect,
  encodeData,
  encodeEob,
  encodeEoh,
  encodeHeader,
  encodeHelo,
  encodeMacro,
  encodeMail,
  encodeOptneg,
  encodeQuit,
  encodeRcpt,
  encodeUnknown,
  knownVersion,
  MILTER_CHUNK_SIZE,
  MilterError,
  type MilterFamily,
  type MilterPacket,
  type MilterStage,
  offeredActions,
  offeredProtocol,
  PacketReader,
  replyName,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_RCPT,
  SMFIC_UNKNOWN,
  SMFIF_ADDHDRS,
  SMFIF_ADDRCPT,
  SMFIF_ADDRCPT_PAR,
  SMFIF_CHGBODY,
  SMFIF_CHGFROM,
  SMFIF_CHGHDRS,
  SMFIF_DELRCPT,
  SMFIF_QUARANTINE,
  SMFIM_STAGES,
  SMFIP_HDR_LEADSPC,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NOMAIL,
  SMFIP_NORCPT,
  SMFIP_NOSEND_MASK,
  SMFIP_NOUNKNOWN,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_DATA,
  SMFIP_NR_EOH,
  SMFIP_NR_HDR,
  SMFIP_NR_HELO,
  SMFIP_NR_MAIL,
  SMFIP_NR_RCPT,
  SMFIP_NR_UNKN,
  SMFIP_RCPT_REJ,
} from "./protocol.ts";

/**
 * A milter's verdict on one event. `reply` is there when the milter gave
 * its own SMTP reply (SMFIR_REPLYCODE); a bare reject or tempfail means
 * {@link MILTER_REJECT} or {@link MILTER_TEMPFAIL}. "skip": no more
 * events of this kind are wanted (body chunks); go on as for continue.
 */
export type MilterReply =
  | { action: "continue" | "accept" | "reject" | "tempfail" | "discard" | "skip" }
  | { action: "reject" | "tempfail"; reply: Rejection };

/**
 * One change a milter asks for at end of message. Header values are what
 * follows the colon, a leading space included (so `${name}:${value}` is
 * the header), folded lines joined by LF. `insertHeader.index` is the
 * milter's: 0 puts the header first. `changeHeader.index` counts the
 * headers of that name from 1; an empty value deletes the header.
 */
export type MilterEdit =
  | { kind: "addHeader"; name: string; value: string }
  | { kind: "insertHeader"; index: number; name: string; value: string }
  | { kind: "changeHeader"; index: number; name: string; value: string }
  | { kind: "addRcpt"; address: string; args?: string }
  | { kind: "deleteRcpt"; address: string }
  | { kind: "changeFrom"; address: string; args?: string }
  | { kind: "replaceBody"; body: Uint8Array }
  | { kind: "quarantine"; reason: string };

/** The verdict at end of message and the edits asked for before it, in order. */
export interface MilterEomResult {
  reply: MilterReply;
  edits: MilterEdit[];
}

/** What a session needs besides its settings. */
export interface MilterSessionOptions {
  /**
   * A macro's value, or undefined when it has none (then it is not sent).
   * Gets the name without braces: "j", "daemon_name", "auth_authen".
   */
  macro: (name: string) => string | undefined;
  /** Warnings that do not end the session, one line each, naming the milter. */
  log?: (line: string) => void;
  /** Opens the connection; a signal aborts it at the connect timeout. @default Deno.connect */
  connect?: (endpoint: MilterEndpoint, signal: AbortSignal) => Promise<Deno.Conn>;
}

/** What the milter answered in negotiation. */
export interface MilterNegotiated {
  version: number;
  /** SMFIF_* bits the milter will use. */
  actions: number;
  /** SMFIP_* bits the milter asked for. */
  protocol: number;
}

/** The reply Postfix gives for SMFIR_REJECT. */
export const MILTER_REJECT: Readonly<Rejection> = {
  code: 550,
  dsn: "5.7.1",
  text: "Command rejected",
};

/** The reply Postfix gives for SMFIR_TEMPFAIL. */
export const MILTER_TEMPFAIL: Readonly<Rejection> = {
  code: 451,
  dsn: "4.7.1",
  text: "Service unavailable - try again later",
};

const CONTINUE: MilterReply = { action: "continue" };

/** SMFIR_SHUTDOWN: Postfix's smtpd answers 421 and hangs up. */
const SHUTDOWN: MilterReply = {
  action: "tempfail",
  reply: { code: 421, dsn: "4.7.0", text: "Server closing connection" },
};

/**
 * What Postfix does when a milter fails (milter8.c milter8_comm_error):
 * accept goes on as if there were no milter; reject answers
 * 550 5.5.0 Service unavailable; tempfail 451 4.7.1 Service unavailable -
 * try again later; quarantine goes on but holds the message.
 */
export function defaultActionReply(
  action: MilterDefaultAction,
): { reply: MilterReply; quarantine?: string } {
  switch (action) {
    case "accept":
      return { reply: CONTINUE };
    case "reject":
      return {
        reply: {
          action: "reject",
          reply: { code: 550, dsn: "5.5.0", text: "Service unavailable" },
        },
      };
    case "tempfail":
      return { reply: { action: "tempfail", reply: { ...MILTER_TEMPFAIL } } };
    case "quarantine":
      return { reply: CONTINUE, quarantine: "milter default_action quarantine" };
  }
}

/** How one event is reported. */
interface Step {
  cmd: string;
  /** Whose macro list goes before it. */
  stage: MilterStage;
  /** The milter's "don't send this" flag. */
  no: number;
  /** The milter's "no reply to this" flag. */
  nr: number;
  packet: () => Uint8Array;
  timeoutMs: number;
  /** Part of a message: not reported after the message was accepted or discarded. */
  inMessage: boolean;
  /** When unwanted, not even the macros go (headers, end of headers, body), as Postfix. */
  quietWhenUnwanted: boolean;
}

/** A printable duration for messages: "30s", "200ms". */
function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Header field names as RFC 5322 allows them: printable ASCII, no colon. */
const HEADER_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** One milter's conversation for one SMTP connection. */
export class MilterSession {
  readonly #settings: MilterSettings;
  readonly #opts: MilterSessionOptions;
  #conn: Deno.Conn | null = null;
  readonly #reader = new PacketReader();
  readonly #readBuf = new Uint8Array(8192);
  #negotiated: MilterNegotiated = { version: 0, actions: 0, protocol: 0 };
  /** Events outside the protocol version spoken (Postfix's np_mask). */
  #notInVersion = 0;
  #macros: Record<MilterStage, readonly string[]>;
  /** connect() was called: there is an SMTP session to abort or quit. */
  #connected = false;
  /** A connection-level verdict, returned for every later event. */
  #decided: MilterReply | null = null;
  /** The message was accepted or discarded: its remaining events are not reported. */
  #messageDone = false;
  /** The command not reported after SMFIR_SKIP, until another is. */
  #skipping: string | null = null;
  /** Body bytes not yet sent, a packet's worth at most; allocated for a message only. */
  #body: Uint8Array | null = null;
  #bodyLen = 0;
  #failed: MilterError | null = null;
  #closed = false;
  #busy = false;

  private constructor(settings: MilterSettings, opts: MilterSessionOptions) {
    this.#settings = settings;
    this.#opts = opts;
    this.#macros = settings.macros;
  }

  /**
   * Connects to the milter and negotiates. Throws {@link MilterError}
   * when it cannot be reached in time or answers out of range (a higher
   * version, actions not offered).
   */
  static async open(settings: MilterSettings, opts: MilterSessionOptions): Promise<MilterSession> {
    const s = new MilterSession(settings, opts);
    try {
      await s.#open();
    } catch (e) {
      throw s.#fail(e);
    }
    return s;
  }

  /** The milter's name in logs: its endpoint as configured. */
  get name(): string {
    return this.#settings.name;
  }

  /** What the milter answered in negotiation. */
  get negotiated(): Readonly<MilterNegotiated> {
    return this.#negotiated;
  }

  /**
   * The milter wants rejected recipients too (SMFIP_RCPT_REJ): smtpd then
   * reports them with {rcpt_mailer} "error", as Postfix does.
   */
  get wantsRejectedRecipients(): boolean {
    return (this.#negotiated.protocol & SMFIP_RCPT_REJ) !== 0;
  }

  /** The error that ended the session, or null. */
  get failed(): MilterError | null {
    return this.#failed;
  }

  /**
   * Reports the SMTP connection. An unknown client name goes as the
   * bracketed address, as Sendmail does. For family "L" the address is
   * the socket path; for "U" no port or address is sent.
   */
  connect(
    hostname: string,
    family: MilterFamily,
    port: number,
    address: string,
  ): Promise<MilterReply> {
    const name = hostname === "unknown" && address !== "unknown" && family !== "U"
      ? `[${address}]`
      : hostname;
    return this.#run(() => {
      this.#connected = true;
      return this.#event({
        ...this.#command(SMFIC_CONNECT, "connect", SMFIP_NOCONNECT, SMFIP_NR_CONN),
        packet: () => encodeConnect(name, family, port, address),
      });
    });
  }

  /** Reports HELO or EHLO. */
  helo(name: string): Promise<MilterReply> {
    return this.#run(() =>
      this.#event({
        ...this.#command(SMFIC_HELO, "helo", SMFIP_NOHELO, SMFIP_NR_HELO),
        packet: () => encodeHelo(name),
      })
    );
  }

  /** Reports MAIL FROM: the address in angle brackets, then each ESMTP parameter. */
  mail(argv: readonly string[]): Promise<MilterReply> {
    return this.#run(() => {
      this.#messageDone = false;
      return this.#event({
        ...this.#command(SMFIC_MAIL, "mail", SMFIP_NOMAIL, SMFIP_NR_MAIL),
        packet: () => encodeMail(argv),
      });
    });
  }

  /** Reports RCPT TO: the address in angle brackets, then each ESMTP parameter. */
  rcpt(argv: readonly string[]): Promise<MilterReply> {
    return this.#run(() =>
      this.#event({
        ...this.#command(SMFIC_RCPT, "rcpt", SMFIP_NORCPT, SMFIP_NR_RCPT),
        inMessage: true,
        packet: () => encodeRcpt(argv),
      })
    );
  }

  /** Reports DATA (protocol version 4 and later; continue for older milters). */
  data(): Promise<MilterReply> {
    return this.#run(() =>
      this.#event({
        ...this.#command(SMFIC_DATA, "data", SMFIP_NODATA, SMFIP_NR_DATA),
        inMessage: true,
        packet: encodeData,
      })
    );
  }

  /**
   * Reports one header: `value` is what follows the colon, folded lines
   * joined by LF. One leading space is removed unless the milter asked
   * for SMFIP_HDR_LEADSPC, as Sendmail does.
   */
  header(name: string, value: string): Promise<MilterReply> {
    const leadSpace = (this.#negotiated.protocol & SMFIP_HDR_LEADSPC) !== 0;
    const v = !leadSpace && value.startsWith(" ") ? value.slice(1) : value;
    return this.#run(() =>
      this.#event({
        ...this.#content(SMFIC_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR),
        stage: "eoh",
        packet: () => encodeHeader(name, v),
      })
    );
  }

  /** Reports the end of the headers. */
  eoh(): Promise<MilterReply> {
    return this.#run(() =>
      this.#event({
        ...this.#content(SMFIC_EOH, SMFIP_NOEOH, SMFIP_NR_EOH),
        stage: "eoh",
        packet: encodeEoh,
      })
    );
  }

  /**
   * Adds body content (CRLF line ends, as on the wire). It is sent in
   * packets of {@link MILTER_CHUNK_SIZE} bytes as they fill, the rest at
   * {@link eom}; the reply is the last sent packet's, continue when none
   * was sent. After a verdict other than continue, the rest of `chunk` is
   * not sent.
   */
  body(chunk: Uint8Array): Promise<MilterReply> {
    return this.#run(async () => {
      if (this.#decided) return this.#decided;
      const unwanted = (this.#negotiated.protocol & SMFIP_NOBODY) !== 0;
      if (this.#messageDone || unwanted || this.#skipping === SMFIC_BODY) return CONTINUE;
      for (let off = 0; off < chunk.length;) {
        this.#body ??= new Uint8Array(MILTER_CHUNK_SIZE);
        const n = Math.min(chunk.length - off, MILTER_CHUNK_SIZE - this.#bodyLen);
        this.#body.set(chunk.subarray(off, off + n), this.#bodyLen);
        this.#bodyLen += n;
        off += n;
        if (this.#bodyLen < MILTER_CHUNK_SIZE) break;
        const r = await this.#flushBody();
        if (r.action !== "continue") return r;
      }
      return CONTINUE;
    });
  }

  /**
   * Ends the message: sends what is left of the body, then SMFIC_BODYEOB,
   * and collects the edits the milter asks for until its verdict. Edits
   * need the action negotiated for them; consecutive body replacement
   * packets make one replaceBody edit.
   */
  eom(): Promise<MilterEomResult> {
    return this.#run(async () => {
      const done = (reply: MilterReply): MilterEomResult => {
        this.#endMessage();
        return { reply, edits: [] };
      };
      if (this.#decided) return done(this.#decided);
      if (this.#messageDone) return done(CONTINUE);
      if (this.#skipping === SMFIC_BODY) this.#bodyLen = 0;
      if (this.#bodyLen > 0) {
        const r = await this.#flushBody();
        if (r.action !== "continue" && r.action !== "skip") return done(r);
      }
      const step = this.#content(SMFIC_BODYEOB, 0, 0);
      this.#skipping = null;
      await this.#send(step, encodeEob());
      const result = await this.#eomReplies(step.timeoutMs);
      this.#endMessage();
      return result;
    });
  }

  /** Reports an SMTP command the server does not know (version 3 and later). */
  unknown(commandLine: string): Promise<MilterReply> {
    return this.#run(() =>
      this.#event({
        ...this.#command(SMFIC_UNKNOWN, "unknown", SMFIP_NOUNKNOWN, SMFIP_NR_UNKN),
        inMessage: true,
        packet: () => encodeUnknown(commandLine),
      })
    );
  }

  /**
   * Ends the current message without a verdict (RSET, a new MAIL, the end
   * of a transaction): the milter forgets it. No reply. Postfix sends it
   * after every transaction, even one ended by {@link eom}.
   */
  abort(): Promise<void> {
    return this.#run(async () => {
      this.#endMessage();
      if (!this.#connected || this.#decided) return;
      await this.#write(encodeAbort(), this.#settings.commandTimeoutMs);
    });
  }

  /**
   * Says goodbye (SMFIC_QUIT, no reply) and closes. Never throws: a dead
   * or busy session is just closed.
   */
  async quit(): Promise<void> {
    if (this.#conn && this.#connected && !this.#failed && !this.#busy) {
      try {
        await this.#write(encodeQuit(), this.#settings.commandTimeoutMs);
      } catch {
        // Going away anyway.
      }
    }
    this.close();
  }

  /** Closes the connection without a word; safe to call twice. */
  close(): void {
    this.#closed = true;
    this.#endMessage();
    this.#closeConn();
  }

  /** The parts of a step for an SMTP command (command timeout). */
  #command(cmd: string, stage: MilterStage, no: number, nr: number) {
    return {
      cmd,
      stage,
      no,
      nr,
      timeoutMs: this.#settings.commandTimeoutMs,
      inMessage: false,
      quietWhenUnwanted: false,
    };
  }

  /** The parts of a step for message content (content timeout, eom macros). */
  #content(cmd: string, no: number, nr: number) {
    return {
      cmd,
      stage: "eom" as MilterStage,
      no,
      nr,
      timeoutMs: this.#settings.contentTimeoutMs,
      inMessage: true,
      quietWhenUnwanted: true,
    };
  }

  /** Runs one call: refuses a dead, closed or busy session; a failure kills it. */
  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#failed) {
      throw new MilterError(`milter ${this.name}: unusable after an earlier error`, {
        timeout: this.#failed.timeout,
        cause: this.#failed,
      });
    }
    if (this.#closed) throw new MilterError(`milter ${this.name}: session closed`);
    if (this.#busy) throw new Error(`milter ${this.name}: call while another is in progress`);
    this.#busy = true;
    try {
      return await fn();
    } catch (e) {
      throw this.#fail(e);
    } finally {
      this.#busy = false;
    }
  }

  /** Reports one event (not end of message) and reads its verdict. */
  async #event(step: Step): Promise<MilterReply> {
    if (this.#decided) return this.#decided;
    if (step.inMessage && this.#messageDone) return CONTINUE;
    if (step.no & this.#notInVersion) return CONTINUE;
    if (this.#skipping === step.cmd) return CONTINUE;
    this.#skipping = null;
    const unwanted = (step.no & this.#negotiated.protocol) !== 0;
    if (unwanted) {
      // Postfix still sends the macros of an unwanted envelope event.
      if (!step.quietWhenUnwanted) await this.#send(step, null);
      return CONTINUE;
    }
    await this.#send(step, step.packet());
    if (step.nr & this.#negotiated.protocol) return CONTINUE;
    return await this.#verdict(step);
  }

  /** Sends the stage's macros (if any have values) and the packet, in one write. */
  async #send(step: Pick<Step, "cmd" | "stage" | "timeoutMs">, packet: Uint8Array | null) {
    const parts: Uint8Array[] = [];
    const pairs: [string, string][] = [];
    for (const name of this.#macros[step.stage]) {
      const bare = name.startsWith("{") && name.endsWith("}") ? name.slice(1, -1) : name;
      const value = this.#opts.macro(bare);
      if (value !== undefined) pairs.push([name, value]);
    }
    if (pairs.length > 0) parts.push(encodeMacro(step.cmd, pairs));
    if (packet) parts.push(packet);
    if (parts.length > 0) await this.#write(concat(parts), step.timeoutMs);
  }

  /** Reads the verdict on an event other than end of message. */
  async #verdict(step: Step): Promise<MilterReply> {
    const connLevel = step.cmd === SMFIC_CONNECT || step.cmd === SMFIC_HELO;
    for (;;) {
      const packet = await this.#readPacket(step.timeoutMs, step.cmd);
      const r = decodeReply(packet);
      switch (r.kind) {
        case "progress":
          continue;
        case "continue":
          return CONTINUE;
        case "skip":
          this.#skipping = step.cmd;
          return { action: "skip" };
        case "accept":
          if (connLevel) return this.#decide(CONTINUE, { action: "accept" });
          this.#messageDone = true;
          return { action: "accept" };
        case "discard":
          if (connLevel) {
            this.#opts.log?.(
              `milter ${this.name}: DISCARD action is not allowed for connect or helo`,
            );
            return CONTINUE;
          }
          this.#messageDone = true;
          return { action: "discard" };
        case "reject":
        case "tempfail":
        case "replyCode": {
          const v: MilterReply = r.kind === "replyCode"
            ? { action: r.reply.code >= 500 ? "reject" : "tempfail", reply: r.reply }
            : { action: r.kind };
          return connLevel ? this.#decide(v, v) : v;
        }
        case "shutdown":
          return this.#decide(SHUTDOWN, SHUTDOWN);
        default:
          throw new MilterError(
            `unexpected ${replyName(packet.cmd)} in reply to ${commandName(step.cmd)}`,
          );
      }
    }
  }

  /** A connection-level verdict: the milter has hung up; later events get `later`. */
  #decide(later: MilterReply, now: MilterReply): MilterReply {
    this.#decided = later;
    this.#closeConn();
    return now;
  }

  /** Sends the gathered body packet and reads its verdict. */
  #flushBody(): Promise<MilterReply> {
    const data = this.#body!.slice(0, this.#bodyLen);
    this.#bodyLen = 0;
    return this.#event({
      ...this.#content(SMFIC_BODY, SMFIP_NOBODY, SMFIP_NR_BODY),
      packet: () => encodeBody(data),
    });
  }

  /** Reads edits up to the verdict on end of message. */
  async #eomReplies(timeoutMs: number): Promise<MilterEomResult> {
    const edits: MilterEdit[] = [];
    const allowed = this.#negotiated.actions;
    const leadSpace = (this.#negotiated.protocol & SMFIP_HDR_LEADSPC) !== 0;
    const headerValue = (v: string) => leadSpace ? v : ` ${v}`;
    let body: Uint8Array[] | null = null;
    let bodyDone = false;
    const need = (action: number, packet: MilterPacket) => {
      if ((allowed & action) === 0) {
        throw new MilterError(`${replyName(packet.cmd)} without the action negotiated for it`);
      }
    };
    const headerName = (name: string, packet: MilterPacket) => {
      if (!HEADER_NAME.test(name)) {
        throw new MilterError(`${replyName(packet.cmd)}: bad header name ${JSON.stringify(name)}`);
      }
    };
    for (;;) {
      const packet = await this.#readPacket(timeoutMs, SMFIC_BODYEOB);
      const r = decodeReply(packet);
      if (body && r.kind !== "replaceBody") {
        edits.push({ kind: "replaceBody", body: concat(body) });
        body = null;
        bodyDone = true;
      }
      switch (r.kind) {
        case "progress":
          continue;
        case "continue":
        case "accept":
        case "discard":
        case "reject":
        case "tempfail":
          return { reply: { action: r.kind }, edits };
        case "replyCode":
          return {
            reply: { action: r.reply.code >= 500 ? "reject" : "tempfail", reply: r.reply },
            edits,
          };
        case "shutdown":
          return { reply: this.#decide(SHUTDOWN, SHUTDOWN), edits };
        case "addHeader":
          need(SMFIF_ADDHDRS, packet);
          headerName(r.name, packet);
          edits.push({ kind: "addHeader", name: r.name, value: headerValue(r.value) });
          continue;
        case "insertHeader":
          need(SMFIF_ADDHDRS, packet);
          headerName(r.name, packet);
          edits.push({ ...r, value: headerValue(r.value) });
          continue;
        case "changeHeader":
          need(SMFIF_CHGHDRS, packet);
          headerName(r.name, packet);
          edits.push({
            ...r,
            // Sendmail takes index 0 as the first header too.
            index: Math.max(1, r.index),
            value: r.value === "" ? "" : headerValue(r.value),
          });
          continue;
        case "addRcpt":
          need(SMFIF_ADDRCPT, packet);
          edits.push({ kind: "addRcpt", address: r.address });
          continue;
        case "addRcptPar":
          need(SMFIF_ADDRCPT_PAR, packet);
          edits.push({ ...r, kind: "addRcpt" });
          continue;
        case "deleteRcpt":
          need(SMFIF_DELRCPT, packet);
          edits.push(r);
          continue;
        case "changeFrom":
          need(SMFIF_CHGFROM, packet);
          edits.push(r);
          continue;
        case "quarantine":
          need(SMFIF_QUARANTINE, packet);
          edits.push(r);
          continue;
        case "replaceBody":
          need(SMFIF_CHGBODY, packet);
          // As Postfix: one replacement, not pieces between other edits.
          if (bodyDone) throw new MilterError("body replacement mixed with other edits");
          (body ??= []).push(r.chunk);
          continue;
        default:
          throw new MilterError(
            `unexpected ${replyName(packet.cmd)} in reply to ${commandName(SMFIC_BODYEOB)}`,
          );
      }
    }
  }

  #endMessage(): void {
    this.#messageDone = false;
    this.#skipping = null;
    this.#body = null;
    this.#bodyLen = 0;
  }

  async #open(): Promise<void> {
    const s = this.#settings;
    const timeoutMs = s.connectTimeoutMs;
    this.#conn = await this.#openConn(timeoutMs);
    const version = s.protocol;
    const actions = offeredActions(version);
    const protocol = offeredProtocol(version) | (s.noHeaderReply ? SMFIP_NR_HDR : 0);
    await this.#write(encodeOptneg({ version, actions, protocol }), timeoutMs);
    const packet = await this.#readPacket(timeoutMs, SMFIC_OPTNEG);
    if (packet.cmd !== SMFIC_OPTNEG) {
      throw new MilterError(`unexpected ${replyName(packet.cmd)} in the initial handshake`);
    }
    const got = decodeOptneg(packet.data);
    const spoken = knownVersion(Math.min(got.version, version));
    if (got.version > version || spoken === null) {
      throw new MilterError(
        `protocol version ${got.version} conflicts with MTA protocol version ${version}`,
      );
    }
    if ((got.actions & ~actions) !== 0) {
      throw new MilterError(
        `request mask 0x${got.actions.toString(16)} conflicts with MTA request mask ` +
          `0x${actions.toString(16)}`,
      );
    }
    this.#negotiated = { version: got.version, actions: got.actions, protocol: got.protocol };
    this.#notInVersion = SMFIP_NOSEND_MASK & ~offeredProtocol(spoken);
    for (const [index, list] of got.symlists) {
      const stage = SMFIM_STAGES[index];
      const names = list.split(/\s+/).filter((n) => n !== "");
      if (stage === undefined) {
        this.#opts.log?.(`milter ${this.name}: ignoring unknown macro type ${index}`);
      } else if (names.length > 0) {
        // An empty list keeps the configured one, as Postfix.
        if (this.#macros === s.macros) this.#macros = { ...s.macros };
        this.#macros[stage] = names;
      }
    }
  }

  /** Connects within the connect timeout; a connection made too late is closed. */
  async #openConn(timeoutMs: number): Promise<Deno.Conn> {
    const ep = this.#settings.endpoint;
    const controller = new AbortController();
    const connecting = this.#opts.connect
      ? this.#opts.connect(ep, controller.signal)
      : ep.kind === "inet"
      ? Deno.connect({ hostname: ep.host, port: ep.port, signal: controller.signal })
      : Deno.connect({ transport: "unix", path: ep.path });
    let timedOut = false;
    connecting.then((c) => timedOut && c.close(), () => {});
    try {
      const conn = await this.#deadline(connecting, timeoutMs, "connect", () => {
        timedOut = true;
        controller.abort();
      });
      // Events that get no reply go out back to back: Nagle would hold each for an ACK.
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      return conn;
    } catch (e) {
      if (e instanceof MilterError) throw e;
      throw new MilterError(`connect: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * `work`, or a timeout MilterError ("read timeout after 30s") when it
   * takes longer than `ms`; `onTimeout` then stops what is still pending.
   * The timer never outlives the call.
   */
  async #deadline<T>(work: Promise<T>, ms: number, what: string, onTimeout: () => void) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // The timeout first: stopping the work makes it fail too, and the first failure wins.
        reject(new MilterError(`${what} timeout after ${duration(ms)}`, { timeout: true }));
        onTimeout();
      }, ms);
    });
    try {
      return await Promise.race([work, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #write(bytes: Uint8Array, timeoutMs: number): Promise<void> {
    const conn = this.#liveConn();
    const writing = (async () => {
      for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
    })();
    try {
      await this.#deadline(writing, timeoutMs, "write", () => this.#closeConn());
    } catch (e) {
      if (e instanceof MilterError) throw e;
      throw new MilterError(`write: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Reads one packet; the timeout covers the whole packet and restarts with each one. */
  async #readPacket(timeoutMs: number, after: string): Promise<MilterPacket> {
    const conn = this.#liveConn();
    const reading = (async () => {
      for (;;) {
        const packet = this.#reader.next();
        if (packet) return packet;
        const n = await conn.read(this.#readBuf);
        if (n === null) {
          throw new MilterError(
            `connection closed by the milter while waiting for the reply to ${commandName(after)}`,
          );
        }
        this.#reader.push(this.#readBuf.subarray(0, n));
      }
    })();
    try {
      return await this.#deadline(reading, timeoutMs, "read", () => this.#closeConn());
    } catch (e) {
      if (e instanceof MilterError) throw e;
      throw new MilterError(`read: ${(e as Error).message}`, { cause: e });
    }
  }

  #liveConn(): Deno.Conn {
    if (!this.#conn) throw new MilterError("connection already closed");
    return this.#conn;
  }

  /** Marks the session dead and closes it; returns the error to throw, naming the milter. */
  #fail(e: unknown): MilterError {
    if (this.#failed) return this.#failed;
    const err = e instanceof MilterError
      ? new MilterError(`milter ${this.name}: ${e.message}`, { timeout: e.timeout, cause: e })
      : new MilterError(`milter ${this.name}: ${(e as Error).message ?? e}`, { cause: e });
    this.#failed = err;
    this.#endMessage();
    this.#closeConn();
    return err;
  }

  #closeConn(): void {
    const conn = this.#conn;
    this.#conn = null;
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}
