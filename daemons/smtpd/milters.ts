/**
 * smtpd's side of smtpd_milters: the cleanup session of a message that
 * milters see ({@link MilterSink}). The milters themselves, their events,
 * verdicts and default actions are lib/milter/chain.ts (MilterChain),
 * which the session (session.ts) drives.
 *
 * The content phase differs from Postfix's in where it runs: Postfix's
 * smtpd hands its milter connections to cleanup, which shows the milters
 * the queue file as written (after header_checks, with the headers cleanup
 * adds). A Deno process cannot pass a socket, so smtpd sends the message
 * as it arrives (with PREPEND results; smtpd's own Received: header is
 * hidden, as Postfix hides it, and counted in header indexes) and passes
 * the edits to cleanup with the end-of-data actions (lib/cleanup/client.ts
 * ContentEdit); cleanup applies them after its own header processing
 * (daemons/cleanup/edits.ts). A milter therefore does not see the
 * Message-ID, Date or From fields cleanup adds when missing, which
 * Postfix's milters see (checked against Postfix 3.7).
 *
 * Not sent to milters (yet): VRFY, ETRN, AUTH and STARTTLS as "unknown"
 * events (Postfix's milter_other_event; a CONNECT/HELO rejection still
 * applies at MAIL FROM).
 */
import type { Logger } from "../../lib/log/mod.ts";
import type {
  CleanupEnvelope,
  CleanupResult,
  CleanupSink,
  MessageActions,
} from "../../lib/cleanup/client.ts";
import type { Rejection } from "../../lib/outcome/mod.ts";
import type { MilterChain } from "../../lib/milter/mod.ts";

/** What a {@link MilterSink} needs from its session. */
export interface MilterSinkHost {
  /** Logs a milter's refusal (milter-reject); the session sends the reply. */
  milterLog(
    cmd: string,
    v: { reply: Rejection; hangup: boolean },
    env: { from?: string; to?: string },
  ): void;
  log: Logger;
  client: string;
  sender: string | null;
  recipients: { address: string }[];
  /** The PREPEND headers above smtpd's Received: header. */
  prepend: string[];
  envelopeLog(env: { from?: string; to?: string }): string;
}

/**
 * The cleanup session of a message that milters see: the content goes to
 * cleanup and to the milters as it arrives; at the end, the milters'
 * verdict comes first (a refusal abandons the queue file), and their
 * edits travel to cleanup with the end-of-data actions, merged with those
 * of smtpd_end_of_data_restrictions (one "actions" message, as cleanup
 * expects when the envelope said `more`).
 */
export class MilterSink implements CleanupSink {
  /** The milters see this message (decided at the envelope). */
  #active = false;
  /** The end-of-data restrictions' actions, held until the milters' are known. */
  #late: MessageActions | null = null;

  constructor(
    readonly cleanup: CleanupSink,
    readonly milters: MilterChain,
    readonly host: MilterSinkHost,
  ) {}

  get queueId(): string {
    return this.cleanup.queueId;
  }

  envelope(env: CleanupEnvelope): void {
    // The session asked milters.wantsContent() for `more` (session.ts actionsField).
    this.#active = env.actions?.more === true && this.milters.wantsContent();
    // smtpd writes its PREPEND headers, then its Received: header (session.ts leadingHeaders).
    if (this.#active) this.milters.startContent(this.host.prepend.length);
    this.cleanup.envelope(env);
  }

  lateActions(actions: MessageActions, body?: Uint8Array): void {
    if (!this.#active) return this.cleanup.lateActions(actions, body);
    this.#late = actions;
  }

  async write(chunk: Uint8Array): Promise<void> {
    await this.cleanup.write(chunk);
    if (this.#active) await this.milters.write(chunk);
  }

  async finish(): Promise<CleanupResult> {
    if (!this.#active) return await this.cleanup.finish();
    const eom = await this.milters.endOfMessage();
    const env = {
      from: this.host.sender ?? "",
      to: this.host.recipients.length === 1 ? this.host.recipients[0].address : undefined,
    };
    if (eom.verdict.kind === "reply") {
      this.cleanup.abort();
      this.host.milterLog("END-OF-MESSAGE", eom.verdict, env);
      // The session answers with it, as with cleanup's own refusals.
      return { status: "error", ...eom.verdict.reply };
    }
    // Postfix sends SMFIC_ABORT after every transaction, the completed ones too.
    this.milters.markAbort();
    if (eom.verdict.kind === "discard") {
      this.host.log.info(
        `${this.queueId}: milter-discard: END-OF-MESSAGE from ${this.host.client}: ` +
          `milter triggers DISCARD action; ${this.host.envelopeLog(env)}`,
      );
    }
    const late = this.#late ?? {};
    // smtpd's own edits (authentication.ts) first, then the milters'.
    const edits = [...(late.edits ?? []), ...(eom.actions.edits ?? [])];
    this.cleanup.lateActions({
      ...late,
      ...eom.actions,
      ...(late.discard || eom.actions.discard ? { discard: true } : {}),
      ...(edits.length ? { edits } : {}),
    }, eom.body);
    return await this.cleanup.finish();
  }

  abort(): void {
    if (this.#active) this.milters.markAbort();
    this.#active = false;
    this.cleanup.abort();
  }
}
