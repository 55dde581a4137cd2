/**
 * The milters of one SMTP connection (or of one message that did not come
 * over SMTP): one conversation per configured milter (client.ts), the
 * events in order, and what the MTA does about them. smtpd drives it for
 * smtpd_milters (daemons/smtpd), cleanup for non_smtpd_milters with
 * emulated events (daemons/cleanup).
 *
 * Events go to the milters in the order the list names them; the first
 * that does not say "continue" decides for the event, as in Postfix. A
 * milter that accepts is done for the message (at CONNECT or HELO: for the
 * connection). Postfix's replies and Sendmail's compatibility rules:
 * - reject: 550 5.7.1 Command rejected; tempfail: 451 4.7.1 Service
 *   unavailable - try again later; a milter's own reply (SMFIR_REPLYCODE)
 *   as given; shutdown: 421 4.7.0 Server closing connection, and the
 *   session ends.
 * - A rejection at CONNECT or HELO is not given there (HELO still gets 250)
 *   but to every MAIL FROM of the session; only a 421 ends the session at
 *   once.
 * - discard (MAIL, RCPT, DATA or end of message): the message is accepted
 *   and dropped; quarantine: it goes to hold/.
 * - A milter that cannot be reached, times out or breaks the protocol gets
 *   its default action (milter_default_action, or default_action in
 *   braces) for this event and every later one of the session: tempfail
 *   answers 451 4.7.1, reject 550 5.5.0, accept leaves the milter out,
 *   quarantine holds the message (defaultActionReply).
 * - Postfix sends SMFIC_ABORT after every transaction; so does this, before
 *   the next event.
 *
 * Never throws for a milter's behaviour.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import type { ContentEdit, MessageActions } from "../cleanup/client.ts";
import type { Rejection } from "../outcome/mod.ts";
import {
  defaultActionReply,
  MILTER_REJECT,
  MILTER_TEMPFAIL,
  type MilterReply,
  MilterSession,
} from "./client.ts";
import type { MilterSettings } from "./config.ts";
import { MilterError } from "./protocol.ts";
import { HeaderSplitter } from "../mime/mod.ts";

/** What the MTA does after a milter event. */
export type MilterVerdict =
  | { kind: "continue" }
  /** Answer with this reply; `hangup`: then end the session (421). */
  | { kind: "reply"; reply: Rejection; hangup: boolean }
  /** Accept the message and drop it. */
  | { kind: "discard" };

const CONTINUE: MilterVerdict = { kind: "continue" };

/** One milter's state within the connection. */
interface Slot {
  settings: MilterSettings;
  session: MilterSession | null;
  /** "done-message": accepted this message; "done-session": accepted the connection, or failed. */
  state: "active" | "done-message" | "done-session";
  /** After a failure: what this milter says from now on (its default action). */
  failed: MilterVerdict | "hold" | null;
  /** It asked to skip the rest of the body (SMFIR_SKIP). */
  skipBody: boolean;
}

/** Where the session stands, for the macros (Postfix's milter_macro lookups). */
export type MacroLookup = (name: string) => string | undefined;

/** What the end of the message decided. */
export interface EndOfMessage {
  verdict: MilterVerdict;
  /** Late actions for cleanup: edits, quarantine, discard. */
  actions: MessageActions;
  /** A replacement body, when a milter replaced it. */
  body?: Uint8Array;
}

/**
 * The milters of one SMTP connection. Never throws for a milter's
 * behaviour: failures become the milter's default action.
 */
export class MilterChain {
  readonly #slots: Slot[];
  /** A CONNECT or HELO rejection, given at every MAIL FROM. */
  #deferred: Rejection | null = null;
  /** The message so far: a milter said hold (quarantine default action). */
  #hold: string | null = null;
  #discard = false;
  /** The content phase of the current message. */
  #content: ContentFeed | null = null;
  /** A milter refused or dropped the message during its content: the answer at its end. */
  #contentVerdict: MilterVerdict | null = null;

  constructor(
    settings: MilterSettings[],
    readonly macro: MacroLookup,
    readonly log: Logger,
  ) {
    this.#slots = settings.map((s) => ({
      settings: s,
      session: null,
      state: "active",
      failed: null,
      skipBody: false,
    }));
  }

  /** Connects to every milter and sends the CONNECT event. */
  async connect(
    client: { name: string; addr: string; port: number },
  ): Promise<MilterVerdict> {
    for (const slot of this.#slots) {
      try {
        slot.session = await MilterSession.open(slot.settings, {
          macro: this.macro,
          log: (line) => this.log.info(line),
        });
      } catch (e) {
        this.#fail(slot, e);
      }
    }
    const family = client.addr.includes(":") ? "6" : "4";
    return this.#connectionEvent(
      "CONNECT",
      (s) => s.connect(client.name, family, client.port, client.addr),
    );
  }

  /** HELO or EHLO. */
  async helo(name: string): Promise<MilterVerdict> {
    await this.#flushAbort();
    return await this.#connectionEvent("HELO", (s) => s.helo(name));
  }

  /** MAIL FROM: `argv` is the address in angle brackets, then the ESMTP parameters. */
  async mail(argv: string[]): Promise<MilterVerdict> {
    await this.#flushAbort();
    this.#resetMessage();
    if (this.#deferred) return { kind: "reply", reply: this.#deferred, hangup: false };
    return await this.#event("MAIL", (s) => s.mail(argv));
  }

  /** RCPT TO, after smtpd's own restrictions accepted it. */
  rcpt(argv: string[]): Promise<MilterVerdict> {
    return this.#event("RCPT", (s) => s.rcpt(argv));
  }

  /** DATA (or the first BDAT), after smtpd's checks. */
  data(): Promise<MilterVerdict> {
    return this.#event("DATA", (s) => s.data());
  }

  /** An unknown SMTP command. */
  async unknown(line: string): Promise<MilterVerdict> {
    await this.#flushAbort();
    return await this.#event("UNKNOWN", (s) => s.unknown(line));
  }

  /** Whether a milter will see this message's content. */
  wantsContent(): boolean {
    return this.#slots.some((s) => s.state === "active" && s.session !== null) ||
      this.#hold !== null || this.#discard;
  }

  /**
   * Starts the content phase: the message's bytes follow through
   * {@link write}. `ownReceived` is the index of smtpd's own Received:
   * header, which milters do not see (as in Postfix and Sendmail; their
   * header indexes still count it).
   */
  startContent(ownReceived: number): void {
    this.#content = new ContentFeed(ownReceived);
  }

  /** Message content as it goes to cleanup (canonical CRLF, dots removed). */
  async write(chunk: Uint8Array): Promise<void> {
    const feed = this.#content;
    if (!feed) return;
    for (const item of feed.push(chunk)) await this.#send(item);
  }

  /** The end of the message: EOM to each milter, its verdict and edits. */
  async endOfMessage(): Promise<EndOfMessage> {
    const feed = this.#content;
    this.#content = null;
    if (feed) { for (const item of feed.end()) await this.#send(item); }
    const edits: ContentEdit[] = [];
    let body: Uint8Array | undefined;
    let quarantine: string | undefined = this.#hold ?? undefined;
    let verdict: MilterVerdict = this.#contentVerdict ??
      (this.#discard ? { kind: "discard" } : CONTINUE);
    for (const slot of this.#slots) {
      if (verdict.kind !== "continue") break;
      if (slot.state !== "active" || !slot.session) continue;
      try {
        const r = await slot.session.eom();
        for (const e of r.edits) {
          if (e.kind === "replaceBody") body = e.body;
          else if (e.kind === "quarantine") quarantine = e.reason || "milter triggers HOLD action";
          else {
            const { kind, ...rest } = e;
            edits.push({ op: kind, ...rest } as ContentEdit);
          }
        }
        verdict = this.#verdict(slot, r.reply, "END-OF-MESSAGE");
      } catch (e) {
        verdict = this.#failVerdict(slot, e);
      }
    }
    if (this.#hold !== null && quarantine === undefined) quarantine = this.#hold;
    this.#resetMessage();
    const actions: MessageActions = {
      ...(edits.length ? { edits } : {}),
      ...(quarantine !== undefined ? { quarantine } : {}),
      ...(verdict.kind === "discard" ? { discard: true } : {}),
    };
    return { verdict, actions, ...(body ? { body } : {}) };
  }

  /**
   * The transaction ended without an end of message (RSET, a refusal):
   * the milters get SMFIC_ABORT before their next event.
   */
  markAbort(): void {
    this.#content = null;
    this.#pendingAbort = true;
  }

  #pendingAbort = false;

  /** Sends a pending abort, if any, before an event. */
  async #flushAbort(): Promise<void> {
    if (!this.#pendingAbort) return;
    this.#pendingAbort = false;
    await this.abort();
  }

  /** The transaction ended without an end of message: SMFIC_ABORT to each milter now. */
  async abort(): Promise<void> {
    this.#content = null;
    for (const slot of this.#slots) {
      if (!slot.session || slot.state === "done-session") continue;
      try {
        await slot.session.abort();
      } catch (e) {
        this.#fail(slot, e);
      }
    }
    this.#resetMessage();
  }

  /** The session is over: QUIT to every milter, connections closed. */
  async close(): Promise<void> {
    await this.#flushAbort();
    for (const slot of this.#slots) {
      const s = slot.session;
      slot.session = null;
      if (!s) continue;
      try {
        await s.quit();
      } catch {
        // gone already
      } finally {
        s.close();
      }
    }
  }

  #resetMessage(): void {
    this.#hold = null;
    this.#contentVerdict = null;
    this.#discard = false;
    for (const slot of this.#slots) {
      if (slot.state === "done-message") slot.state = "active";
      slot.skipBody = false;
    }
  }

  /** CONNECT and HELO: a rejection waits for MAIL FROM; a 421 ends the session now. */
  async #connectionEvent(
    what: string,
    send: (s: MilterSession) => Promise<MilterReply>,
  ): Promise<MilterVerdict> {
    const v = await this.#event(what, send, true);
    if (v.kind !== "reply" || v.hangup) return v;
    this.#deferred ??= v.reply;
    return CONTINUE;
  }

  /** One event to each active milter until one decides. */
  async #event(
    what: string,
    send: (s: MilterSession) => Promise<MilterReply>,
    connection = false,
  ): Promise<MilterVerdict> {
    for (const slot of this.#slots) {
      if (slot.failed) {
        if (slot.failed === "hold") {
          this.#hold ??= `milter ${slot.settings.name} is unavailable`;
          continue;
        }
        if (slot.failed.kind === "continue") continue;
        return slot.failed;
      }
      if (slot.state !== "active" || !slot.session) continue;
      let v: MilterVerdict;
      try {
        const r = await send(slot.session);
        if (r.action === "accept") {
          slot.state = connection ? "done-session" : "done-message";
          continue;
        }
        v = this.#verdict(slot, r, what);
      } catch (e) {
        v = this.#failVerdict(slot, e);
      }
      if (v.kind !== "continue") return v;
    }
    return CONTINUE;
  }

  /** A milter's reply as smtpd's verdict. */
  #verdict(slot: Slot, r: MilterReply, what: string): MilterVerdict {
    switch (r.action) {
      case "continue":
      case "accept":
        if (r.action === "accept" && what !== "END-OF-MESSAGE") slot.state = "done-message";
        return CONTINUE;
      case "skip":
        slot.skipBody = true;
        return CONTINUE;
      case "discard":
        this.#discard = true;
        return { kind: "discard" };
      case "reject":
      case "tempfail": {
        // SMFIR_SHUTDOWN comes as a 421 tempfail: the session ends after it.
        const reply = "reply" in r
          ? r.reply
          : r.action === "reject"
          ? MILTER_REJECT
          : MILTER_TEMPFAIL;
        return { kind: "reply", reply, hangup: reply.code === 421 };
      }
    }
  }

  /** A failed milter: logged once, then its default action from here on. */
  #failVerdict(slot: Slot, e: unknown): MilterVerdict {
    this.#fail(slot, e);
    const f = slot.failed!;
    if (f === "hold") {
      this.#hold ??= `milter ${slot.settings.name} is unavailable`;
      return CONTINUE;
    }
    return f;
  }

  #fail(slot: Slot, e: unknown): void {
    if (slot.failed) return;
    const s = slot.session;
    slot.session = null;
    s?.close();
    slot.state = "done-session";
    const action = slot.settings.defaultAction;
    const why = e instanceof MilterError ? e.message : `milter ${slot.settings.name}: ${e}`;
    this.log.warn(`${why}; default action: ${action}`);
    const d = defaultActionReply(action);
    slot.failed = d.quarantine !== undefined
      ? "hold"
      : d.reply.action === "reject" || d.reply.action === "tempfail"
      ? {
        kind: "reply",
        reply: "reply" in d.reply ? d.reply.reply : MILTER_TEMPFAIL,
        hangup: false,
      }
      : CONTINUE;
  }

  /** Header, end of headers or body to every milter that wants them. */
  async #send(item: ContentItem): Promise<void> {
    for (const slot of this.#slots) {
      if (slot.state !== "active" || !slot.session) continue;
      if (item.kind === "body" && slot.skipBody) continue;
      try {
        const r = item.kind === "header"
          ? await slot.session.header(item.name, item.value)
          : item.kind === "eoh"
          ? await slot.session.eoh()
          : await slot.session.body(item.data);
        if (r.action === "accept") slot.state = "done-message";
        // A decision during the content is the message's; it is given at its end.
        const v = this.#verdict(slot, r, "CONTENT");
        if (v.kind !== "continue") this.#contentVerdict ??= v;
      } catch (e) {
        const v = this.#failVerdict(slot, e);
        if (v.kind !== "continue") this.#contentVerdict ??= v;
      }
    }
  }
}

/** One step of the content phase. */
type ContentItem =
  | { kind: "header"; name: string; value: string }
  | { kind: "eoh" }
  | { kind: "body"; data: Uint8Array };

/**
 * Message content as milters take it: header fields one by one (name, and
 * the value after the colon as written, its folds as LF, without the line
 * end: what Postfix sends), the end of the headers, then the body as it
 * arrives. The empty line between header and body is not sent.
 */
class ContentFeed {
  readonly #splitter = new HeaderSplitter({ maxBytes: 1 << 30, lineBytes: 1 << 30 });

  /** @param hidden the index of the header field milters are not shown (smtpd's Received:). */
  constructor(readonly hidden: number) {}

  #inBody = false;
  /** The empty line that ends the headers is still to be cut from the body. */
  #cutSeparator = true;

  push(chunk: Uint8Array): ContentItem[] {
    if (this.#inBody) return this.#body(chunk);
    const r = this.#splitter.push(chunk);
    if (!r.done) return [];
    this.#inBody = true;
    return [
      ...this.#headers(r.headers!),
      { kind: "eoh" },
      ...this.#body(r.rest ?? new Uint8Array()),
    ];
  }

  end(): ContentItem[] {
    if (this.#inBody) return [];
    this.#inBody = true;
    const r = this.#splitter.end();
    return [...this.#headers(r.headers), { kind: "eoh" }, ...this.#body(r.rest)];
  }

  #headers(fields: { name: string; raw: Uint8Array }[]): ContentItem[] {
    return fields.filter((_, i) => i !== this.hidden).map((f) => {
      const raw = utf8.decode(f.raw);
      const value = raw.slice(raw.indexOf(":") + 1).replace(/\r?\n$/, "").replace(/\r\n/g, "\n");
      return { kind: "header", name: f.name, value };
    });
  }

  #body(data: Uint8Array): ContentItem[] {
    if (this.#cutSeparator && data.length) {
      this.#cutSeparator = false;
      if (data[0] === 0x0d && data[1] === 0x0a) data = data.subarray(2);
      else if (data[0] === 0x0a) data = data.subarray(1);
    }
    // MilterSession.body cuts packets to the protocol's size itself.
    return data.length ? [{ kind: "body", data }] : [];
  }
}

const utf8 = new TextDecoder();
