/**
 * The two shapes every result in the mail path takes, whoever makes it:
 *
 * - a {@link Rejection}, the answer to a client: reply code, enhanced
 *   status code and text (smtpd's restrictions and limits, cleanup and its
 *   content checks, a server's reply to the smtp client). The reply code
 *   says whether it is permanent (5XX) or not (4XX), as chasquid's
 *   `(err, permanent)` does.
 * - a {@link DeliveryOutcome}, what became of one recipient or destination:
 *   sent, deferred (tried again) or bounced (returned to the sender), with
 *   the enhanced status code and the reason as logged and reported. Every
 *   delivery agent's status (lib/deliver RecipientStatus) and every step
 *   inside one (local's mailboxes, files, commands) is one.
 *
 * {@link isPermanent} and {@link failureStatus} say which failures are
 * final, from the codes, so nothing decides permanence from error text.
 *
 * @module
 */

/** A refusal as an SMTP server gives it. */
export interface Rejection {
  /** Reply code, 4XX or 5XX. */
  code: number;
  /** Enhanced status code (RFC 3463), e.g. "5.7.1". */
  dsn: string;
  /** Reply text, without code and enhanced code. */
  text: string;
}

/** What became of one delivery. */
export interface DeliveryOutcome {
  status: "sent" | "deferred" | "bounced";
  /** Enhanced status code, e.g. "2.0.0", "4.4.1", "5.1.1". */
  dsn: string;
  /** Human text for logs and delivery status notifications. */
  reason: string;
}

/** True for a permanent refusal (5XX): the client must not try again. */
export function isPermanent(r: Pick<Rejection, "code">): boolean {
  return r.code >= 500;
}

/**
 * What a failure with this enhanced status code does to its recipient:
 * 5.X.X bounces, anything else is tried again (RFC 3463 classes; a
 * malformed code is never taken as permanent).
 */
export function failureStatus(dsn: string): "bounced" | "deferred" {
  return dsn.startsWith("5") ? "bounced" : "deferred";
}
