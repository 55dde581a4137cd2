/**
 * How long smtpd waits for a client's next read: Postfix 3.7's
 * smtpd_per_request_deadline and smtpd_min_data_rate.
 *
 * - `smtpd_per_request_deadline = no` (Postfix's default, except under
 *   stress): smtpd_timeout bounds each read call. A client that sends one
 *   byte every smtpd_timeout - 1 seconds keeps its session (and a
 *   connection slot) for as long as it likes, in Postwarden as in Postfix;
 *   only smtpd_timeout, the hard error limit and the anvil limits bound
 *   it. Set the parameter to yes to bound such trickling.
 * - `yes`: smtpd_timeout bounds the time spent waiting in read calls for a
 *   whole request: one command line, or the whole content of DATA or of
 *   one BDAT chunk. For content, each read of N bytes adds
 *   N / smtpd_min_data_rate seconds, but the time left never grows beyond
 *   smtpd_timeout (a client that keeps sending at least that many bytes
 *   per second is never cut off; a slower one is, at most smtpd_timeout
 *   after it fell behind).
 *
 * Writes (each response) are bounded by smtpd_timeout either way: a
 * response is sent in one write call. The STARTTLS handshake keeps its own
 * smtpd_starttls_timeout (tls.ts). Deadlines fire on the shared sweep of
 * deadlines.ts, up to its tick late.
 *
 * Parameters: smtpd_per_request_deadline (no; yes under stress),
 * smtpd_min_data_rate (500 bytes/s), smtpd_timeout.
 */
import type { Config } from "../../lib/config/mod.ts";

/** The deadline settings of a configuration. */
export interface RequestDeadlinePolicy {
  /** smtpd_per_request_deadline. */
  perRequest: boolean;
  /** smtpd_timeout in milliseconds. */
  timeoutMs: number;
  /** smtpd_min_data_rate in bytes per second. */
  minDataRate: number;
}

/** smtpd_per_request_deadline, smtpd_timeout and smtpd_min_data_rate of `c`. */
export function requestDeadlinePolicy(c: Config): RequestDeadlinePolicy {
  return {
    perRequest: c.bool("smtpd_per_request_deadline"),
    timeoutMs: c.time("smtpd_timeout") * 1000,
    minDataRate: c.int("smtpd_min_data_rate"),
  };
}

/** The time left for the request being read. */
export class RequestDeadline {
  #left: number;
  #content = false;

  constructor(readonly policy: RequestDeadlinePolicy) {
    this.#left = policy.timeoutMs;
  }

  /** A new request begins: a command line, or message content (DATA, a BDAT chunk). */
  start(content: boolean): void {
    this.#left = this.policy.timeoutMs;
    this.#content = content;
  }

  /** How long the next read call may wait, in milliseconds (0: the request is out of time). */
  limit(): number {
    return this.policy.perRequest ? Math.max(0, this.#left) : this.policy.timeoutMs;
  }

  /** A read call returned `bytes` bytes after waiting `elapsedMs`. */
  read(elapsedMs: number, bytes: number): void {
    if (!this.policy.perRequest) return;
    this.#left -= elapsedMs;
    if (this.#content) {
      this.#left = Math.min(
        this.policy.timeoutMs,
        this.#left + (bytes * 1000) / this.policy.minDataRate,
      );
    }
  }
}
