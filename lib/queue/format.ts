/**
 * The queue file format, pure encode/decode with no I/O.
 *
 * A queue file is a sequence of records: one type byte, a 4-byte big-endian
 * payload length, the payload. In order:
 *
 *   V  "PWQ1"                    magic and version
 *   H  JSON {@link Envelope}     sender, arrival time, client attributes
 *   R  status byte + JSON        one per recipient; status `R` pending, `D` done
 *   N  bytes                     message content chunks (CRLF lines, not dot-stuffed)
 *   X  16 bytes                  trailer: "PWQX" + 12-digit decimal total file size
 *
 * The trailer makes truncation detectable: a file whose last record is not a
 * trailer naming the file's own size is corrupt. The recipient status byte
 * sits at a fixed offset so the queue manager can mark a recipient done in
 * place with a single one-byte write, the way Postfix rewrites record types.
 */

import { concat } from "../bytes/mod.ts";
export { concat };

/** Record type bytes. */
export const REC = {
  magic: 0x56, // V
  envelope: 0x48, // H
  recipient: 0x52, // R
  content: 0x4e, // N
  trailer: 0x58, // X
} as const;

/** Recipient status byte values. */
export const RCPT_PENDING = 0x52; // R
export const RCPT_DONE = 0x44; // D

export const MAGIC = "PWQ1";
export const TRAILER_SIZE = 5 + 16;
/** Bytes in each content record written by {@link QueueFileWriter} callers. */
export const CONTENT_CHUNK = 64 * 1024;

/** A corrupt or truncated queue file. */
export class QueueFormatError extends Error {
  override readonly name = "QueueFormatError";
}

/** Per-message envelope data. */
export interface Envelope {
  queueId: string;
  /** Arrival time, ms since the epoch. */
  arrival: number;
  /** Envelope sender, "" for the null sender. */
  sender: string;
  /** Client and protocol attributes for logging and Received headers. */
  attrs?: {
    clientName?: string;
    clientAddr?: string;
    helo?: string;
    protocol?: string;
    origin?: string;
    /** DSN ENVID (RFC 3461). */
    envid?: string;
    /** DSN RET: "FULL" or "HDRS". */
    ret?: string;
    /** The client declared SMTPUTF8 (RFC 6531) in MAIL FROM. */
    smtputf8?: boolean;
    /**
     * REQUIRETLS (RFC 8689) in MAIL FROM: relayed only over authenticated
     * TLS to servers that offer REQUIRETLS, bounced with headers only.
     */
    requiretls?: boolean;
    /** Set on delivery status notifications we generate. */
    dsnKind?: string;
    /**
     * sendmail -bv: verify the recipients and report to the sender instead
     * of delivering (Postfix's trace flag DEL_REQ_FLAG_USR_VRFY). Only
     * pickup sets it, from the maildrop file.
     */
    verify?: true;
    /**
     * XFORWARD from an authorized upstream (smtpd_authorized_xforward_hosts):
     * the original client, for logging; clientName/clientAddr stay the real
     * connection. `source`: header rewriting context ("local"/"remote").
     */
    xforward?: {
      name: string;
      addr: string;
      port: string;
      protocol: string;
      helo?: string;
      ident?: string;
      source?: "local" | "remote";
    };
  };
  /** Message-ID header value, for logging. */
  messageId?: string;
  /**
   * Content filter "transport:destination" (content_filter or a FILTER
   * action; Postfix's REC_TYPE_FILT): qmgr sends every recipient there
   * instead of resolving it. Absent in files written before it existed.
   */
  filter?: string;
}

/** One envelope recipient. */
export interface Recipient {
  address: string;
  /** Original recipient (DSN ORCPT, or the address before rewriting). */
  orcpt?: string;
  /** DSN NOTIFY values: "SUCCESS", "FAILURE", "DELAY", "NEVER". */
  notify?: string[];
}

/** A recipient as read back, with its place in the file. */
export interface StoredRecipient extends Recipient {
  /** Index among the file's recipients. */
  index: number;
  /** Byte offset of the status byte. */
  statusOffset: number;
  done: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes one record. */
export function encodeRecord(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** Encodes the header part: magic, envelope and recipients. */
export function encodeHead(env: Envelope, rcpts: Recipient[]): Uint8Array {
  const parts = [
    encodeRecord(REC.magic, encoder.encode(MAGIC)),
    encodeRecord(REC.envelope, encoder.encode(JSON.stringify(env))),
  ];
  for (const r of rcpts) {
    const json = encoder.encode(JSON.stringify(r));
    const payload = new Uint8Array(1 + json.length);
    payload[0] = RCPT_PENDING;
    payload.set(json, 1);
    parts.push(encodeRecord(REC.recipient, payload));
  }
  return concat(parts);
}

/** Header of a content record of the given length (payload written separately). */
export function contentRecordHeader(length: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = REC.content;
  new DataView(out.buffer).setUint32(1, length);
  return out;
}

/** The trailer for a file whose total size, trailer included, is `totalSize`. */
export function encodeTrailer(totalSize: number): Uint8Array {
  return encodeRecord(REC.trailer, encoder.encode(`PWQX${String(totalSize).padStart(12, "0")}`));
}

/** Checks that `tail` (the last {@link TRAILER_SIZE} bytes) is a trailer naming `fileSize`. */
export function checkTrailer(tail: Uint8Array, fileSize: number): boolean {
  if (tail.length !== TRAILER_SIZE || tail[0] !== REC.trailer) return false;
  if (new DataView(tail.buffer, tail.byteOffset).getUint32(1) !== 16) return false;
  return decoder.decode(tail.subarray(5)) === `PWQX${String(fileSize).padStart(12, "0")}`;
}

/** The decoded head of a queue file. */
export interface QueueHead {
  envelope: Envelope;
  recipients: StoredRecipient[];
  /** Offset of the first content record. */
  contentOffset: number;
}

/**
 * Decodes magic, envelope and recipients from the start of a file. Returns
 * null if `buf` ends before the first content record (caller reads more).
 */
export function decodeHead(buf: Uint8Array): QueueHead | null {
  let off = 0;
  let envelope: Envelope | null = null;
  const recipients: StoredRecipient[] = [];
  let sawMagic = false;
  while (true) {
    if (off + 5 > buf.length) return null;
    const type = buf[off];
    const len = new DataView(buf.buffer, buf.byteOffset + off + 1, 4).getUint32(0);
    if (type === REC.content || type === REC.trailer) {
      if (!sawMagic || !envelope) throw new QueueFormatError("missing magic or envelope record");
      return { envelope, recipients, contentOffset: off };
    }
    if (off + 5 + len > buf.length) return null;
    const payload = buf.subarray(off + 5, off + 5 + len);
    switch (type) {
      case REC.magic:
        if (decoder.decode(payload) !== MAGIC || off !== 0) {
          throw new QueueFormatError("bad magic");
        }
        sawMagic = true;
        break;
      case REC.envelope:
        envelope = parseJson(payload) as unknown as Envelope;
        if (typeof envelope.queueId !== "string" || typeof envelope.sender !== "string") {
          throw new QueueFormatError("bad envelope record");
        }
        break;
      case REC.recipient: {
        const status = payload[0];
        if (status !== RCPT_PENDING && status !== RCPT_DONE) {
          throw new QueueFormatError(`bad recipient status byte ${status}`);
        }
        const r = parseJson(payload.subarray(1)) as unknown as Recipient;
        if (typeof r.address !== "string") throw new QueueFormatError("bad recipient record");
        recipients.push({
          ...r,
          index: recipients.length,
          statusOffset: off + 5,
          done: status === RCPT_DONE,
        });
        break;
      }
      default:
        throw new QueueFormatError(`unknown record type ${type} at offset ${off}`);
    }
    off += 5 + len;
  }
}

function parseJson(b: Uint8Array): Record<string, unknown> {
  try {
    const v = JSON.parse(decoder.decode(b));
    if (typeof v !== "object" || v === null) throw new Error("not an object");
    return v;
  } catch (e) {
    throw new QueueFormatError(`bad JSON record: ${(e as Error).message}`);
  }
}

/**
 * Strips record framing from the content part of a file, incrementally.
 * Feed bytes starting at `contentOffset`; yields content and reports the
 * trailer.
 */
export class ContentDecoder {
  #need = 0; // remaining payload bytes of the current content record
  #head = new Uint8Array(5);
  #headLen = 0;
  #done = false;

  get done(): boolean {
    return this.#done;
  }

  /** Returns the content bytes found in `chunk`. */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let off = 0;
    while (off < chunk.length && !this.#done) {
      if (this.#need > 0) {
        const n = Math.min(this.#need, chunk.length - off);
        out.push(chunk.subarray(off, off + n));
        off += n;
        this.#need -= n;
        continue;
      }
      const n = Math.min(5 - this.#headLen, chunk.length - off);
      this.#head.set(chunk.subarray(off, off + n), this.#headLen);
      this.#headLen += n;
      off += n;
      if (this.#headLen < 5) break;
      this.#headLen = 0;
      const len = new DataView(this.#head.buffer).getUint32(1);
      if (this.#head[0] === REC.trailer) {
        this.#done = true;
      } else if (this.#head[0] === REC.content) {
        this.#need = len;
      } else {
        throw new QueueFormatError(`unexpected record type ${this.#head[0]} in content`);
      }
    }
    return out;
  }
}

let lastStamp = 0;
let seq = 0;

/**
 * A new queue id: 13 hex digits of microseconds since the epoch and two of
 * sequence, upper case. Unique within a process, sortable by arrival, safe
 * as a file name; the writer also creates files exclusively.
 */
export function newQueueId(nowMs = Date.now()): string {
  let stamp = Math.floor(nowMs * 1000 + (performance.now() % 1) * 1000);
  if (stamp <= lastStamp) {
    stamp = lastStamp;
    seq++;
    if (seq > 0xff) {
      stamp = lastStamp + 1;
      seq = 0;
    }
  } else seq = 0;
  lastStamp = stamp;
  return stamp.toString(16).toUpperCase().padStart(13, "0") +
    seq.toString(16).toUpperCase().padStart(2, "0");
}

/** True for names that are queue ids (and not temp files). */
export function isQueueId(name: string): boolean {
  return /^[0-9A-F]{15}$/.test(name);
}
