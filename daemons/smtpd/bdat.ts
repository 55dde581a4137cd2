/**
 * The BDAT command (RFC 3030 CHUNKING) of an smtpd session, with
 * Postfix's replies:
 *
 * - `BDAT <size> [LAST]`; a malformed argument is answered "521 5.5.4
 *   Syntax: BDAT count [LAST]" and ends the session (the chunk cannot be
 *   found), as does BDAT when CHUNKING is in smtpd_discard_ehlo_keywords
 *   ("521 5.5.1 Error: command not implemented").
 * - Each chunk is read to its end whatever happens, and answered after it:
 *   "250 2.0.0 Ok: N bytes", and at LAST "250 2.0.0 Ok: N bytes queued as
 *   ID" once cleanup reports the queue file durable. Content streams to
 *   cleanup as it arrives (lib/smtp/bdat.ts decodes it); nothing buffers a
 *   whole chunk.
 * - Errors: no transaction (503 5.5.1 need RCPT command / 554 5.5.1 no
 *   valid recipients, as DATA), smtpd_data_restrictions (run at the first
 *   chunk, as at DATA), a chunk over message_size_limit ("552 5.3.4 Chunk
 *   exceeds message size limit"), a bare LF with smtpd_forbid_bare_newline
 *   = reject, cleanup failures. After an error in a chunk that is not the
 *   last, the transaction is dead: every later BDAT is read and answered
 *   "551 5.0.0 Discarded N bytes after earlier error" until LAST or RSET,
 *   and MAIL, RCPT and DATA get "503 5.5.1 Error: X after BDAT".
 *
 * Parameters: message_size_limit, smtpd_forbid_bare_newline (through the
 * session), myhostname.
 *
 * @module
 */
import type { Rejection } from "../../lib/outcome/mod.ts";
import { BdatDecoder, parseBdatArgs } from "../../lib/smtp/bdat.ts";
import { checkData } from "./restrictions.ts";
import type { Recipient } from "../../lib/queue/mod.ts";
import type { CleanupSink } from "../../lib/cleanup/client.ts";
import type { Config } from "../../lib/config/mod.ts";
import type { Logger } from "../../lib/log/mod.ts";
import type { LineReader } from "../../lib/smtp/mod.ts";
import type { CheckRequest, RestrictionContext } from "./restrictions.ts";
import type { BareNewline, Discard, ProtocolPolicy } from "./protocol.ts";
import { Disconnect } from "./session.ts";

/** A BDAT transaction in progress. */
export interface BdatState {
  /** An earlier chunk failed: later chunks are discarded. */
  failed: boolean;
  /** Content decoder (null once failed). */
  decoder: BdatDecoder | null;
  /** Cleanup could not take a write (reported at the end of the chunk). */
  writeError: string;
}

/** What BDAT needs from the session (session.ts's Session). */
export interface BdatSession {
  readonly cfg: Config;
  readonly log: Logger;
  readonly lines: LineReader;
  readonly client: string;
  readonly policy: ProtocolPolicy;
  readonly discard: Discard;
  readonly bareNewline: BareNewline;
  readonly d: { restrictions: RestrictionContext };
  bdat: BdatState | null;
  sender: string | null;
  recipients: Recipient[];
  cleanup: CleanupSink | null;
  lastCommand: string;
  reply(code: number, enhanced: string | null, text: string | string[]): void;
  reject(code: number, enhanced: string, text: string): { code: number; dsn: string };
  refuse(cmd: string, v: Rejection, env?: { from?: string; to?: string }): void;
  request(recipient?: string): CheckRequest;
  read(): Promise<Uint8Array | null>;
  /** smtpd_per_request_deadline: a chunk's content is one request (request_deadline.ts). */
  requests?: { start(content: boolean): void };
  flush(): Promise<void>;
  startMessage(cleanup: CleanupSink): void;
  leadingHeaders(queueId: string): string;
  endOfDataRefused(only: string | undefined): Promise<boolean>;
  /** The milters' DATA event: null to go on, else the refusal to give after the chunk. */
  milterData(cmd: string, only: string | undefined): Promise<(() => void) | null>;
  bareLfRejected(envelope: { cmd: string; to?: string } | null): Promise<void>;
  resetTransaction(): void;
}

const encoder = new TextEncoder();

/** Handles one BDAT command and its chunk; true when it succeeded. */
export async function doBdat(s: BdatSession, arg: string): Promise<boolean> {
  if (s.discard.keywords.has("CHUNKING")) {
    s.reply(521, "5.5.1", "Error: command not implemented");
    await s.flush();
    throw new Disconnect();
  }
  const args = parseBdatArgs(arg);
  if (!args) {
    s.log.warn(
      `${s.cleanup?.queueId ?? "NOQUEUE"}: malformed BDAT command syntax from ${s.client}: ` +
        `BDAT ${arg}`.trimEnd().slice(0, 100),
    );
    s.reply(521, "5.5.4", "Syntax: BDAT count [LAST]");
    await s.flush();
    throw new Disconnect();
  }
  const { size, last } = args;
  const fail = () => {
    s.cleanup?.abort();
    s.cleanup = null;
    if (last) s.resetTransaction();
    else s.bdat = { failed: true, decoder: null, writeError: "" };
  };

  if (s.bdat?.failed) {
    await readChunk(s, size, null);
    s.reply(551, "5.0.0", `Discarded ${size} bytes after earlier error`);
    if (last) s.resetTransaction();
    return false;
  }
  if (!s.bdat) {
    // The first chunk: DATA's checks, then the envelope goes to cleanup.
    let refused: (() => void) | null = null;
    if (s.sender === null) {
      refused = () => s.reply(503, "5.5.1", "Error: need RCPT command");
    } else if (s.recipients.length === 0) {
      refused = () => s.reply(554, "5.5.1", "Error: no valid recipients");
    } else {
      const only = s.recipients.length === 1 ? s.recipients[0].address : undefined;
      const v = await checkData(s.d.restrictions, s.request(only));
      if (v) refused = () => s.refuse("BDAT", v, { from: s.sender!, to: only });
      else refused = await s.milterData("BDAT", only);
    }
    if (refused) {
      await readChunk(s, size, null);
      refused();
      fail();
      return false;
    }
    s.startMessage(s.cleanup!);
    s.bdat = { failed: false, decoder: new BdatDecoder(), writeError: "" };
    await write(s, [encoder.encode(s.leadingHeaders(s.cleanup!.queueId))]);
  }
  const state = s.bdat!;
  const decoder = state.decoder!;
  const limit = s.cfg.size("message_size_limit");
  if (limit > 0 && size > limit - decoder.bytesOut) {
    s.log.warn(
      `${s.cleanup!.queueId}: BDAT request from ${s.client} exceeds message size limit`,
    );
    await readChunk(s, size, null);
    s.reject(552, "5.3.4", "Chunk exceeds message size limit");
    fail();
    return false;
  }
  await readChunk(s, size, (bytes) => write(s, decoder.push(bytes)));
  if (decoder.bareLfCount > 0 && s.bareNewline === "reject") {
    const only = s.recipients.length === 1 ? s.recipients[0].address : undefined;
    await s.bareLfRejected({ cmd: "BDAT content", to: only });
    fail();
    return false;
  }
  if (last) await write(s, decoder.finish());
  if (state.writeError) {
    s.log.warn(`${s.cleanup!.queueId}: cleanup: ${state.writeError}`);
    s.reply(451, "4.3.0", "Error: queue file write error");
    fail();
    return false;
  }
  if (!last) {
    s.reply(250, "2.0.0", `Ok: ${decoder.bytesOut} bytes`);
    return true;
  }
  const cleanup = s.cleanup!;
  const only = s.recipients.length === 1 ? s.recipients[0].address : undefined;
  if (await s.endOfDataRefused(only)) {
    s.cleanup = null;
    cleanup.abort();
    s.resetTransaction();
    return false;
  }
  s.cleanup = null;
  let ok = false;
  try {
    const r = await cleanup.finish();
    if (r.status === "ok") {
      s.reply(250, "2.0.0", `Ok: ${decoder.bytesOut} bytes queued as ${r.queueId}`);
      ok = true;
    } else {
      s.reject(r.code, r.dsn, r.text);
    }
  } catch (e) {
    s.log.warn(`${cleanup.queueId}: cleanup: ${(e as Error).message}`);
    s.reply(451, "4.3.0", "Error: queue file write error");
  }
  s.resetTransaction();
  return ok;
}

/** Writes decoded content to cleanup; the first failure is kept for the end of the chunk. */
async function write(s: BdatSession, parts: Uint8Array[]): Promise<void> {
  const state = s.bdat!;
  if (state.writeError || !s.cleanup) return;
  try {
    for (const p of parts) await s.cleanup.write(p);
  } catch (e) {
    state.writeError = (e as Error).message;
  }
}

/**
 * Reads exactly `size` bytes of chunk content, first what the command
 * reader already holds, handing each piece to `sink` (null: discard).
 * Bytes after the chunk go back to the command reader.
 */
async function readChunk(
  s: BdatSession,
  size: number,
  sink: ((bytes: Uint8Array) => Promise<void>) | null,
): Promise<void> {
  let left = size;
  let piece = s.lines.takeBuffered();
  s.requests?.start(true);
  for (;;) {
    if (piece.length > 0) {
      const take = Math.min(left, piece.length);
      if (sink) await sink(piece.subarray(0, take));
      left -= take;
      if (take < piece.length) s.lines.push(piece.subarray(take));
    }
    if (left === 0) return;
    const chunk = await s.read();
    if (chunk === null) {
      s.cleanup?.abort();
      s.cleanup = null;
      s.log.info(`lost connection after BDAT from ${s.client}`);
      throw new Disconnect();
    }
    piece = chunk;
  }
}
