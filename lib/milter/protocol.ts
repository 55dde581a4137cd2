/**
 * The Sendmail 8 milter protocol on the wire, versions 2, 3, 4 and 6, as
 * Postfix's MTA side speaks it (src/milter/milter8.c): the command, reply,
 * action and protocol constants, packet framing, an incremental packet
 * reader, an encoder for each command the MTA sends and a decoder for each
 * reply a milter sends.
 *
 * A packet is a 4-byte big-endian length, one command byte and the data;
 * the length counts the command byte and the data. Strings are
 * NUL-terminated; numbers are 32-bit (16-bit for the CONNECT port) big
 * endian. Every malformed packet is a {@link MilterError}: after one, the
 * stream cannot be resynchronized and the caller drops the connection.
 *
 * Pure: no I/O. lib/milter/client.ts holds the conversation (what to send
 * when, timeouts, negotiation); lib/milter/_testing.ts the fake milter.
 *
 * @module
 */

import { concat } from "../bytes/mod.ts";
import type { Rejection } from "../outcome/mod.ts";
import { isEnhancedCode } from "../smtp/status.ts";

// Commands, MTA to milter. One character each, as on the wire.

/** Abort the current message (no reply). */
export const SMFIC_ABORT = "A";
/** A body chunk. */
export const SMFIC_BODY = "B";
/** Connection information. */
export const SMFIC_CONNECT = "C";
/** Macro definitions for the command that follows. */
export const SMFIC_MACRO = "D";
/** End of message (Sendmail's "end of body"). */
export const SMFIC_BODYEOB = "E";
/** HELO or EHLO. */
export const SMFIC_HELO = "H";
/** One message header. */
export const SMFIC_HEADER = "L";
/** MAIL FROM. */
export const SMFIC_MAIL = "M";
/** End of headers. */
export const SMFIC_EOH = "N";
/** Option negotiation (also the milter's answer to it). */
export const SMFIC_OPTNEG = "O";
/** Close the milter session (no reply). */
export const SMFIC_QUIT = "Q";
/** RCPT TO. */
export const SMFIC_RCPT = "R";
/** DATA (protocol version 4 and later). */
export const SMFIC_DATA = "T";
/** An SMTP command the MTA does not know (version 3 and later). */
export const SMFIC_UNKNOWN = "U";
/** Quit, but keep the connection for a new session (version 6; Postfix never sends it). */
export const SMFIC_QUIT_NC = "K";

// Replies, milter to MTA.

/** Add a recipient. */
export const SMFIR_ADDRCPT = "+";
/** Delete a recipient. */
export const SMFIR_DELRCPT = "-";
/** Add a recipient with ESMTP arguments (version 6). */
export const SMFIR_ADDRCPT_PAR = "2";
/** 421 and close: Sendmail-internal, handled as Postfix does. */
export const SMFIR_SHUTDOWN = "4";
/** Accept the connection or message; no more events for it. */
export const SMFIR_ACCEPT = "a";
/** A chunk of the replacement body. */
export const SMFIR_REPLBODY = "b";
/** Continue. */
export const SMFIR_CONTINUE = "c";
/** Accept the message and throw it away. */
export const SMFIR_DISCARD = "d";
/** Change the envelope sender (version 6). */
export const SMFIR_CHGFROM = "e";
/** Cause a connection failure (Sendmail-internal; Postfix refuses it too). */
export const SMFIR_CONN_FAIL = "f";
/** Add a header at the end. */
export const SMFIR_ADDHEADER = "h";
/** Insert a header at a position. */
export const SMFIR_INSHEADER = "i";
/** Set the list of macros wanted at a stage (in the OPTNEG reply only). */
export const SMFIR_SETSYMLIST = "l";
/** Change or delete a header. */
export const SMFIR_CHGHEADER = "m";
/** Still working: wait longer. */
export const SMFIR_PROGRESS = "p";
/** Quarantine (hold) the message. */
export const SMFIR_QUARANTINE = "q";
/** Reject with 550 5.7.1. */
export const SMFIR_REJECT = "r";
/** Skip further events of this kind (body chunks, version 6). */
export const SMFIR_SKIP = "s";
/** Reject with 451 4.7.1. */
export const SMFIR_TEMPFAIL = "t";
/** Reject with the SMTP reply given. */
export const SMFIR_REPLYCODE = "y";

// Actions (SMFIF_*): the edits a milter may make at end of message.

export const SMFIF_ADDHDRS = 0x001;
export const SMFIF_CHGBODY = 0x002;
export const SMFIF_ADDRCPT = 0x004;
export const SMFIF_DELRCPT = 0x008;
export const SMFIF_CHGHDRS = 0x010;
export const SMFIF_QUARANTINE = 0x020;
export const SMFIF_CHGFROM = 0x040;
export const SMFIF_ADDRCPT_PAR = 0x080;
export const SMFIF_SETSYMLIST = 0x100;

// Protocol flags (SMFIP_*): steps the milter does not want (NO*), steps it
// will not answer (NR_*), and features.

export const SMFIP_NOCONNECT = 1 << 0;
export const SMFIP_NOHELO = 1 << 1;
export const SMFIP_NOMAIL = 1 << 2;
export const SMFIP_NORCPT = 1 << 3;
export const SMFIP_NOBODY = 1 << 4;
export const SMFIP_NOHDRS = 1 << 5;
export const SMFIP_NOEOH = 1 << 6;
/** No reply per header (Postfix's "no_header_reply"; also called SMFIP_NOHREPL). */
export const SMFIP_NR_HDR = 1 << 7;
export const SMFIP_NOUNKNOWN = 1 << 8;
export const SMFIP_NODATA = 1 << 9;
/** The MTA understands SMFIR_SKIP. */
export const SMFIP_SKIP = 1 << 10;
/** The milter wants rejected recipients too. */
export const SMFIP_RCPT_REJ = 1 << 11;
export const SMFIP_NR_CONN = 1 << 12;
export const SMFIP_NR_HELO = 1 << 13;
export const SMFIP_NR_MAIL = 1 << 14;
export const SMFIP_NR_RCPT = 1 << 15;
export const SMFIP_NR_DATA = 1 << 16;
export const SMFIP_NR_UNKN = 1 << 17;
export const SMFIP_NR_EOH = 1 << 18;
export const SMFIP_NR_BODY = 1 << 19;
/** Header values keep their leading space (otherwise one space after the colon is eaten). */
export const SMFIP_HDR_LEADSPC = 1 << 20;

/** The steps a milter can ask not to be sent. */
export const SMFIP_NOSEND_MASK = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
  SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA;
/** The steps a milter can ask to send no reply to. */
export const SMFIP_NOREPLY_MASK = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
  SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;

// Macro stages (SMFIM_*): which list a symbol list in the OPTNEG reply replaces.

export const SMFIM_CONNECT = 0;
export const SMFIM_HELO = 1;
export const SMFIM_ENVFROM = 2;
export const SMFIM_ENVRCPT = 3;
export const SMFIM_DATA = 4;
export const SMFIM_EOM = 5;
export const SMFIM_EOH = 6;

// Address families in SMFIC_CONNECT.

export const SMFIA_UNKNOWN = "U";
export const SMFIA_UNIX = "L";
export const SMFIA_INET = "4";
export const SMFIA_INET6 = "6";

/** The address family of a CONNECT: IPv4, IPv6, a UNIX socket, or unknown. */
export type MilterFamily = "4" | "6" | "L" | "U";

/** The protocol versions spoken (5 was never used by Sendmail). */
export type MilterVersion = 2 | 3 | 4 | 6;

/** The stages that have a macro list (milter_*_macros). */
export type MilterStage =
  | "connect"
  | "helo"
  | "mail"
  | "rcpt"
  | "data"
  | "eoh"
  | "eom"
  | "unknown";

/** The stage of each SMFIM_* index (note SMFIM_EOM < SMFIM_EOH). */
export const SMFIM_STAGES: readonly MilterStage[] = [
  "connect",
  "helo",
  "mail",
  "rcpt",
  "data",
  "eom",
  "eoh",
];

/** Largest body chunk sent, as libmilter's default buffer (MILTER_CHUNK_SIZE). */
export const MILTER_CHUNK_SIZE = 65535;

/**
 * Largest packet accepted from a milter. libmilter sends at most
 * MILTER_CHUNK_SIZE of body per packet; headers (a DKIM signature) and
 * reply texts are far smaller. A larger length is a broken or hostile
 * peer, refused before anything is buffered.
 */
export const MAX_PACKET = 1024 * 1024;

/**
 * A failed milter exchange: refused or dropped connection, timeout, or a
 * malformed packet. The caller applies the milter's default_action.
 */
export class MilterError extends Error {
  override readonly name = "MilterError";
  /** The milter did not answer (or accept data) in time. */
  readonly timeout: boolean;

  constructor(message: string, opts: { timeout?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.timeout = opts.timeout ?? false;
  }
}

/** The protocol flags the MTA offers at a version (Postfix's MILTER8_V*_PROTO_MASK). */
export function offeredProtocol(version: MilterVersion): number {
  const v2 = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY |
    SMFIP_NOHDRS | SMFIP_NOEOH;
  if (version === 2) return v2;
  if (version === 3) return v2 | SMFIP_NOUNKNOWN;
  const v4 = v2 | SMFIP_NOUNKNOWN | SMFIP_NODATA;
  if (version === 4) return v4;
  return v4 | SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_NOREPLY_MASK | SMFIP_HDR_LEADSPC;
}

/**
 * The actions the MTA offers at a version: version 4 (Sendmail 8.13)
 * added quarantine, version 6 (8.14) sender change, recipients with
 * arguments and symbol lists.
 */
export function offeredActions(version: MilterVersion): number {
  const v2 = SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGHDRS;
  if (version < 4) return v2;
  if (version === 4) return v2 | SMFIF_QUARANTINE;
  return v2 | SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST;
}

/**
 * The highest known version at or below `version` (a milter answering 5
 * gets version 4's steps), or null below 2. Postfix does the same.
 */
export function knownVersion(version: number): MilterVersion | null {
  if (version >= 6) return 6;
  if (version >= 4) return 4;
  if (version === 3 || version === 2) return version;
  return null;
}

// Framing.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** One packet: its command (or reply) character and its data. */
export interface MilterPacket {
  cmd: string;
  data: Uint8Array;
}

/** Frames a packet: length, command byte, then the data parts in order. */
export function encodePacket(cmd: string, ...data: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const d of data) len += d.length;
  const out = new Uint8Array(5 + len);
  new DataView(out.buffer).setUint32(0, len + 1);
  out[4] = cmd.charCodeAt(0);
  let off = 5;
  for (const d of data) {
    out.set(d, off);
    off += d.length;
  }
  return out;
}

/**
 * Cuts a byte stream into packets. Feed it what a socket read returns
 * ({@link push}); take packets out with {@link next}. Only bytes not yet
 * returned are kept.
 */
export class PacketReader {
  readonly #maxPacket: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;

  constructor(maxPacket = MAX_PACKET) {
    this.#maxPacket = maxPacket;
  }

  /** Bytes received and not yet returned in a packet. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds received bytes (copied: the caller may reuse its buffer). */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.push(bytes.slice());
    this.#buffered += bytes.length;
  }

  /**
   * The next complete packet, or null until more bytes arrive. Throws
   * {@link MilterError} for a length of 0 or above the maximum, as soon as
   * the four length bytes are in.
   */
  next(): MilterPacket | null {
    if (this.#buffered < 4) return null;
    const head = this.#peek(4);
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    if (len < 1) throw new MilterError("bad packet length 0");
    if (len > this.#maxPacket) {
      throw new MilterError(`packet length ${len} exceeds the limit of ${this.#maxPacket}`);
    }
    if (this.#buffered < 4 + len) return null;
    const packet = this.#take(4 + len);
    return { cmd: String.fromCharCode(packet[4]), data: packet.subarray(5) };
  }

  /** The first `n` buffered bytes, joining chunks only as far as needed. */
  #peek(n: number): Uint8Array {
    if (this.#chunks[0].length >= n) return this.#chunks[0];
    const whole = concat(this.#chunks);
    this.#chunks = [whole];
    return whole;
  }

  #take(n: number): Uint8Array {
    const first = this.#peek(n);
    const out = first.subarray(0, n);
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    return out;
  }
}

// Strings.

/** A string with its NUL terminator; a NUL inside would cut it short, so it is refused. */
export function encodeString(s: string): Uint8Array {
  if (s.includes("\0")) throw new MilterError("NUL character in a milter string");
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** NUL-terminated strings back to back, as MAIL, RCPT and MACRO carry them. */
export function encodeStrings(list: readonly string[]): Uint8Array {
  return concat(list.map(encodeString));
}

/**
 * Splits data into its NUL-terminated strings. Throws {@link MilterError}
 * when the data does not end in a NUL (a string without terminator).
 */
export function decodeStrings(data: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0) continue;
    out.push(decoder.decode(data.subarray(start, i)));
    start = i + 1;
  }
  if (start !== data.length) throw new MilterError("string without NUL terminator");
  return out;
}

/** Reads the fields of one packet's data, in order; any mismatch is a MilterError. */
class Fields {
  #off = 0;
  constructor(readonly what: string, readonly data: Uint8Array) {}

  get left(): number {
    return this.data.length - this.#off;
  }

  u32(): number {
    if (this.left < 4) throw new MilterError(`${this.what}: packet too short for a number`);
    const v = new DataView(this.data.buffer, this.data.byteOffset + this.#off, 4).getUint32(0);
    this.#off += 4;
    return v;
  }

  str(): string {
    const end = this.data.indexOf(0, this.#off);
    if (end < 0) throw new MilterError(`${this.what}: string without NUL terminator`);
    const s = decoder.decode(this.data.subarray(this.#off, end));
    this.#off = end + 1;
    return s;
  }

  done(): void {
    if (this.left > 0) {
      throw new MilterError(`${this.what}: followed by ${this.left} unexpected data bytes`);
    }
  }
}

function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(4 * i, v >>> 0));
  return out;
}

// Commands the MTA sends.

/** What each side offers or asks for in option negotiation. */
export interface Negotiation {
  version: number;
  /** SMFIF_* bits. */
  actions: number;
  /** SMFIP_* bits. */
  protocol: number;
}

/** SMFIC_OPTNEG: version, actions and protocol flags offered. */
export function encodeOptneg(n: Negotiation): Uint8Array {
  return encodePacket(SMFIC_OPTNEG, u32s(n.version, n.actions, n.protocol));
}

/**
 * SMFIC_MACRO for the command `cmd` (a SMFIC_* character): name and
 * value strings alternating. Names go as the list spells them ("j",
 * "{daemon_name}").
 */
export function encodeMacro(
  cmd: string,
  pairs: readonly (readonly [string, string])[],
): Uint8Array {
  return encodePacket(
    SMFIC_MACRO,
    new Uint8Array([cmd.charCodeAt(0)]),
    encodeStrings(pairs.flat()),
  );
}

/**
 * SMFIC_CONNECT: client host name, family, and for a known family the
 * port and address (for "L" the socket path, port 0). A port outside
 * 0..65535 is sent as 0, as Postfix does.
 */
export function encodeConnect(
  hostname: string,
  family: MilterFamily,
  port: number,
  address: string,
): Uint8Array {
  const fam = new Uint8Array([family.charCodeAt(0)]);
  if (family === SMFIA_UNKNOWN) return encodePacket(SMFIC_CONNECT, encodeString(hostname), fam);
  const p = new Uint8Array(2);
  const ok = Number.isInteger(port) && port >= 0 && port <= 65535;
  new DataView(p.buffer).setUint16(0, family === SMFIA_UNIX || !ok ? 0 : port);
  return encodePacket(SMFIC_CONNECT, encodeString(hostname), fam, p, encodeString(address));
}

/** SMFIC_HELO: the HELO or EHLO argument. */
export function encodeHelo(name: string): Uint8Array {
  return encodePacket(SMFIC_HELO, encodeString(name));
}

/** SMFIC_MAIL: the address (in angle brackets) and ESMTP parameters, one string each. */
export function encodeMail(argv: readonly string[]): Uint8Array {
  return encodePacket(SMFIC_MAIL, encodeStrings(argv));
}

/** SMFIC_RCPT: the address (in angle brackets) and ESMTP parameters, one string each. */
export function encodeRcpt(argv: readonly string[]): Uint8Array {
  return encodePacket(SMFIC_RCPT, encodeStrings(argv));
}

/** SMFIC_DATA. */
export function encodeData(): Uint8Array {
  return encodePacket(SMFIC_DATA);
}

/** SMFIC_HEADER: name and value (folded lines joined by LF, as Sendmail sends them). */
export function encodeHeader(name: string, value: string): Uint8Array {
  return encodePacket(SMFIC_HEADER, encodeString(name), encodeString(value));
}

/** SMFIC_EOH. */
export function encodeEoh(): Uint8Array {
  return encodePacket(SMFIC_EOH);
}

/** SMFIC_BODY: one chunk of at most {@link MILTER_CHUNK_SIZE} bytes, CRLF line ends. */
export function encodeBody(chunk: Uint8Array): Uint8Array {
  if (chunk.length > MILTER_CHUNK_SIZE) {
    throw new RangeError(`body chunk of ${chunk.length} bytes exceeds ${MILTER_CHUNK_SIZE}`);
  }
  return encodePacket(SMFIC_BODY, chunk);
}

/**
 * SMFIC_BODYEOB, without data: libmilter would take data as one more body
 * chunk, but other implementations drop it, so Postfix never sends any.
 */
export function encodeEob(): Uint8Array {
  return encodePacket(SMFIC_BODYEOB);
}

/** SMFIC_ABORT. */
export function encodeAbort(): Uint8Array {
  return encodePacket(SMFIC_ABORT);
}

/** SMFIC_QUIT. */
export function encodeQuit(): Uint8Array {
  return encodePacket(SMFIC_QUIT);
}

/** SMFIC_QUIT_NC. */
export function encodeQuitNc(): Uint8Array {
  return encodePacket(SMFIC_QUIT_NC);
}

/** SMFIC_UNKNOWN: the whole command line. */
export function encodeUnknown(commandLine: string): Uint8Array {
  return encodePacket(SMFIC_UNKNOWN, encodeString(commandLine));
}

// Replies a milter sends.

/** The milter's OPTNEG reply. */
export interface OptnegReply extends Negotiation {
  /** Symbol lists asked for, by SMFIM_* index: macro names separated by spaces. */
  symlists: [number, string][];
}

/** Decodes the data of the milter's SMFIC_OPTNEG reply. */
export function decodeOptneg(data: Uint8Array): OptnegReply {
  const f = new Fields("SMFIC_OPTNEG reply", data);
  const version = f.u32();
  const actions = f.u32();
  const protocol = f.u32();
  const symlists: [number, string][] = [];
  while (f.left > 0) symlists.push([f.u32(), f.str()]);
  return { version, actions, protocol, symlists };
}

/** One decoded reply packet. Header indexes are as the milter sent them. */
export type MilterReplyPacket =
  | {
    kind:
      | "accept"
      | "continue"
      | "discard"
      | "progress"
      | "reject"
      | "shutdown"
      | "skip"
      | "tempfail";
  }
  | { kind: "replyCode"; reply: Rejection }
  | { kind: "addHeader"; name: string; value: string }
  | { kind: "insertHeader"; index: number; name: string; value: string }
  | { kind: "changeHeader"; index: number; name: string; value: string }
  | { kind: "addRcpt"; address: string }
  | { kind: "addRcptPar"; address: string; args?: string }
  | { kind: "deleteRcpt"; address: string }
  | { kind: "changeFrom"; address: string; args?: string }
  | { kind: "replaceBody"; chunk: Uint8Array }
  | { kind: "quarantine"; reason: string };

const SIMPLE_REPLIES: Record<string, MilterReplyPacket["kind"]> = {
  [SMFIR_ACCEPT]: "accept",
  [SMFIR_CONTINUE]: "continue",
  [SMFIR_DISCARD]: "discard",
  [SMFIR_PROGRESS]: "progress",
  [SMFIR_REJECT]: "reject",
  [SMFIR_SKIP]: "skip",
  [SMFIR_TEMPFAIL]: "tempfail",
  [SMFIR_SHUTDOWN]: "shutdown",
};

/** The SMFIR_* name of a reply character, for messages ("SMFIR_ADDHEADER", or the code). */
export function replyName(cmd: string): string {
  return REPLY_NAMES[cmd] ?? `unknown reply 0x${cmd.charCodeAt(0).toString(16).padStart(2, "0")}`;
}

/** The SMFIC_* name of a command character, for messages. */
export function commandName(cmd: string): string {
  return COMMAND_NAMES[cmd] ?? `unknown command 0x${cmd.charCodeAt(0).toString(16)}`;
}

const REPLY_NAMES: Record<string, string> = {
  [SMFIR_ADDRCPT]: "SMFIR_ADDRCPT",
  [SMFIR_DELRCPT]: "SMFIR_DELRCPT",
  [SMFIR_ADDRCPT_PAR]: "SMFIR_ADDRCPT_PAR",
  [SMFIR_SHUTDOWN]: "SMFIR_SHUTDOWN",
  [SMFIR_ACCEPT]: "SMFIR_ACCEPT",
  [SMFIR_REPLBODY]: "SMFIR_REPLBODY",
  [SMFIR_CONTINUE]: "SMFIR_CONTINUE",
  [SMFIR_DISCARD]: "SMFIR_DISCARD",
  [SMFIR_CHGFROM]: "SMFIR_CHGFROM",
  [SMFIR_CONN_FAIL]: "SMFIR_CONN_FAIL",
  [SMFIR_ADDHEADER]: "SMFIR_ADDHEADER",
  [SMFIR_INSHEADER]: "SMFIR_INSHEADER",
  [SMFIR_SETSYMLIST]: "SMFIR_SETSYMLIST",
  [SMFIR_CHGHEADER]: "SMFIR_CHGHEADER",
  [SMFIR_PROGRESS]: "SMFIR_PROGRESS",
  [SMFIR_QUARANTINE]: "SMFIR_QUARANTINE",
  [SMFIR_REJECT]: "SMFIR_REJECT",
  [SMFIR_SKIP]: "SMFIR_SKIP",
  [SMFIR_TEMPFAIL]: "SMFIR_TEMPFAIL",
  [SMFIR_REPLYCODE]: "SMFIR_REPLYCODE",
  [SMFIC_OPTNEG]: "SMFIC_OPTNEG",
};

const COMMAND_NAMES: Record<string, string> = {
  [SMFIC_ABORT]: "SMFIC_ABORT",
  [SMFIC_BODY]: "SMFIC_BODY",
  [SMFIC_CONNECT]: "SMFIC_CONNECT",
  [SMFIC_MACRO]: "SMFIC_MACRO",
  [SMFIC_BODYEOB]: "SMFIC_BODYEOB",
  [SMFIC_HELO]: "SMFIC_HELO",
  [SMFIC_HEADER]: "SMFIC_HEADER",
  [SMFIC_MAIL]: "SMFIC_MAIL",
  [SMFIC_EOH]: "SMFIC_EOH",
  [SMFIC_OPTNEG]: "SMFIC_OPTNEG",
  [SMFIC_QUIT]: "SMFIC_QUIT",
  [SMFIC_RCPT]: "SMFIC_RCPT",
  [SMFIC_DATA]: "SMFIC_DATA",
  [SMFIC_UNKNOWN]: "SMFIC_UNKNOWN",
  [SMFIC_QUIT_NC]: "SMFIC_QUIT_NC",
};

/**
 * Decodes one reply packet (not the OPTNEG reply: {@link decodeOptneg}).
 * Throws {@link MilterError} for an unknown reply, missing or extra data,
 * or a malformed SMFIR_REPLYCODE text.
 */
export function decodeReply(packet: MilterPacket): MilterReplyPacket {
  const { cmd, data } = packet;
  const f = new Fields(replyName(cmd), data);
  const simple = SIMPLE_REPLIES[cmd];
  if (simple) {
    f.done();
    return { kind: simple } as MilterReplyPacket;
  }
  switch (cmd) {
    case SMFIR_REPLYCODE:
      return { kind: "replyCode", reply: parseReplyCode(replyText(data)) };
    case SMFIR_ADDHEADER:
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER: {
      const index = cmd === SMFIR_ADDHEADER ? 0 : f.u32();
      const name = f.str();
      const value = f.str();
      f.done();
      if (cmd === SMFIR_ADDHEADER) return { kind: "addHeader", name, value };
      return {
        kind: cmd === SMFIR_INSHEADER ? "insertHeader" : "changeHeader",
        index,
        name,
        value,
      };
    }
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT: {
      const address = f.str();
      f.done();
      return { kind: cmd === SMFIR_ADDRCPT ? "addRcpt" : "deleteRcpt", address };
    }
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM: {
      const address = f.str();
      const args = f.left > 0 ? f.str() : undefined;
      f.done();
      const kind = cmd === SMFIR_CHGFROM ? "changeFrom" : "addRcptPar";
      return args === undefined ? { kind, address } : { kind, address, args };
    }
    case SMFIR_REPLBODY:
      return { kind: "replaceBody", chunk: data };
    case SMFIR_QUARANTINE: {
      const reason = f.str();
      f.done();
      return { kind: "quarantine", reason };
    }
  }
  throw new MilterError(`${replyName(cmd)} is not a reply this client accepts`);
}

/** The REPLYCODE text: one trailing NUL (libmilter sends it) dropped, none allowed inside. */
function replyText(data: Uint8Array): string {
  const end = data.length > 0 && data[data.length - 1] === 0 ? data.length - 1 : data.length;
  if (data.subarray(0, end).includes(0)) {
    throw new MilterError("SMFIR_REPLYCODE: NUL character inside the reply");
  }
  return decoder.decode(data.subarray(0, end));
}

/**
 * Parses a SMFIR_REPLYCODE text into the reply it asks for. Each line is
 * a 4XX or 5XX code, "-" (more lines follow) or " " (the last), an
 * optional enhanced status code of the same class, and text; lines are
 * separated by CRLF (libmilter's smfi_setmlreply). "%%" becomes "%" and a
 * lone "%" is dropped: Sendmail takes the text as a format string, so
 * milters double their percent signs (Postfix undoes that the same way).
 *
 * Returns the code, the enhanced code of the first line (X.0.0 when the
 * milter gave none) and the lines' texts joined by LF, each without its
 * code and enhanced code. Throws {@link MilterError} for anything else,
 * including control characters that could break the SMTP reply.
 */
export function parseReplyCode(text: string): Rejection {
  const lines = text.replace(/%(%?)/g, "$1").split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  const bad = (why: string) =>
    new MilterError(`SMFIR_REPLYCODE: ${why} in ${JSON.stringify(text.slice(0, 200))}`);
  let code = 0;
  let dsn = "";
  const texts: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^([45]\d\d)([ -])(.*)$/s.exec(lines[i]);
    if (!m) throw bad("malformed reply line");
    const last = i === lines.length - 1;
    if (m[2] !== (last ? " " : "-")) throw bad(last ? "last line ends in '-'" : "missing '-'");
    if (code !== 0 && Number(m[1]) !== code) throw bad("reply codes differ between lines");
    code = Number(m[1]);
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(m[3])) throw bad("control character");
    // Postfix's one check on the enhanced code: a leading digit must be the reply's class.
    if (/^\d/.test(m[3]) && m[3][0] !== m[1][0]) throw bad("enhanced status code of another class");
    const sp = m[3].indexOf(" ");
    const first = sp < 0 ? m[3] : m[3].slice(0, sp);
    if (isEnhancedCode(first)) {
      if (dsn === "") dsn = first;
      texts.push(sp < 0 ? "" : m[3].slice(sp + 1));
    } else {
      texts.push(m[3]);
    }
  }
  return { code, dsn: dsn || `${String(code)[0]}.0.0`, text: texts.join("\n") };
}
