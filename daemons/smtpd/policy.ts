/**
 * The client side of Postfix's policy delegation protocol
 * (SMTPD_POLICY_README), behind `check_policy_service`: smtpd sends
 * `name=value` lines ending in an empty line, the policy server answers
 * `action=...` lines ending in an empty line, and the action is an
 * access(5) result that restrictions.ts evaluates with the code it uses
 * for access tables (tableResult): this file only fetches the action.
 *
 * The attributes are the ones Postfix 3.7 sends, in its order (captured
 * from a real Postfix 3.7): request, protocol_state, protocol_name,
 * client_address, client_name, client_port, reverse_client_name,
 * server_address, server_port, helo_name, sender, recipient,
 * recipient_count, queue_id, instance, size, etrn_domain, stress,
 * sasl_method, sasl_username, sasl_sender, ccert_subject, ccert_issuer,
 * ccert_fingerprint, ccert_pubkey_fingerprint, encryption_protocol,
 * encryption_cipher, encryption_keysize, policy_context. (Postfix 3.8 adds
 * compatibility_level and mail_version; 3.7, Postwarden's reference, does
 * not send them.)
 *
 * Connections are reused, one request at a time on each: a request takes
 * an idle connection or opens one, and gives it back after a clean
 * answer (an answer followed by bytes nobody asked for is used, but its
 * connection is closed). A connection idle longer than max_idle, older than max_ttl, or
 * that has served request_limit requests is closed. A request that fails
 * (connection refused or dropped, timeout, an answer without `action`,
 * with a line that is not `name=value`, with control characters, or longer
 * than {@link MAX_ANSWER_BYTES}) closes
 * its connection and is tried again up to try_limit times, retry_delay
 * apart; then the service's default_action is the answer, with a warning.
 * The whole request, retries included, never waits longer than
 * try_limit * (timeout + retry_delay): a policy server cannot hang a
 * session.
 *
 * Parameters: smtpd_policy_service_timeout (100s),
 * smtpd_policy_service_max_idle (300s), smtpd_policy_service_max_ttl
 * (1000s), smtpd_policy_service_try_limit (2),
 * smtpd_policy_service_retry_delay (1s),
 * smtpd_policy_service_default_action (451 4.3.5 Server configuration
 * problem), smtpd_policy_service_policy_context (empty),
 * smtpd_policy_service_request_limit (0: no limit), each overridable per
 * service in braces (lib/config/policy_service.ts; request_limit is not,
 * as in Postfix), and queue_directory for `unix:` endpoints.
 */
import {
  type Config,
  parsePolicyService,
  type PolicyEndpoint,
  type PolicyService,
} from "../../lib/config/mod.ts";

/**
 * What a session knows that the policy request carries besides the
 * restriction request's client, helo, sender and recipient. Absent
 * fields are sent empty (or 0), as Postfix sends what it does not have.
 */
export interface PolicyFacts {
  /** The SMTP command being checked (Postfix's protocol_state): CONNECT, EHLO, MAIL, RCPT, DATA... */
  command: string;
  /** SMTP or ESMTP. */
  protocol: string;
  clientPort?: number;
  /** The client name before forward confirmation; the verified name when not known. */
  reverseName?: string;
  serverAddr?: string;
  serverPort?: number;
  queueId?: string;
  /** Postfix's instance: one value per mail transaction. */
  instance?: string;
  /** MAIL FROM SIZE=, or 0. */
  size?: number;
  /** Accepted recipients (sent at DATA only, as Postfix). */
  recipientCount?: number;
  sasl?: { method: string; username: string; sender?: string } | null;
  /** The TLS session, when there is one (encryption_* attributes). */
  tls?: { protocol: string; cipher: string; bits: number } | null;
}

/** The request attributes for one query, in Postfix 3.7's order (policy_context is added by the client). */
export function policyAttributes(
  req: {
    client: { name: string; addr: string };
    helo: string;
    sender: string | null;
    recipient?: string;
  },
  f: PolicyFacts,
): [string, string][] {
  const atData = f.command === "DATA" || f.command === "BDAT" || f.command === "END-OF-MESSAGE";
  return [
    ["request", "smtpd_access_policy"],
    ["protocol_state", f.command === "BDAT" ? "DATA" : f.command],
    ["protocol_name", f.protocol],
    ["client_address", req.client.addr],
    ["client_name", req.client.name],
    ["client_port", f.clientPort === undefined ? "" : String(f.clientPort)],
    ["reverse_client_name", f.reverseName ?? req.client.name],
    ["server_address", f.serverAddr ?? ""],
    ["server_port", f.serverPort === undefined ? "" : String(f.serverPort)],
    ["helo_name", req.helo],
    ["sender", req.sender ?? ""],
    ["recipient", req.recipient ?? ""],
    ["recipient_count", String(atData ? f.recipientCount ?? 0 : 0)],
    ["queue_id", f.queueId ?? ""],
    ["instance", f.instance ?? ""],
    ["size", String(f.size ?? 0)],
    ["etrn_domain", ""],
    ["stress", ""],
    ["sasl_method", f.sasl?.method ?? ""],
    ["sasl_username", f.sasl?.username ?? ""],
    ["sasl_sender", f.sasl?.sender ?? ""],
    // Client certificates are never requested (lib/tls/ccert.ts says why): empty, as
    // Postfix's without smtpd_tls_ask_ccert.
    ["ccert_subject", ""],
    ["ccert_issuer", ""],
    ["ccert_fingerprint", ""],
    ["ccert_pubkey_fingerprint", ""],
    ["encryption_protocol", f.tls?.protocol ?? ""],
    ["encryption_cipher", f.tls?.cipher ?? ""],
    ["encryption_keysize", String(f.tls?.bits ?? 0)],
  ];
}

/** Longest answer accepted; a longer one is an error (the connection is dropped). */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** One policy service's settings after the per-service overrides. */
export interface PolicySettings {
  timeoutMs: number;
  maxIdleMs: number;
  maxTtlMs: number;
  tryLimit: number;
  retryDelayMs: number;
  defaultAction: string;
  policyContext: string;
  /** 0: no limit. */
  requestLimit: number;
}

/** What the policy clients need besides the configuration. */
export interface PolicyOptions {
  warn: (msg: string) => void;
  /** Opens a connection. @default Deno.connect */
  connect?: (ep: PolicyEndpoint) => Promise<Deno.Conn>;
  /** Milliseconds clock. @default Date.now */
  now?: () => number;
}

const TIME_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** A Postfix time value ("100s", "5m", "10": seconds) in milliseconds, or an Error. */
function timeMs(name: string, value: string): number {
  const m = /^(\d+)([smhdw]?)$/.exec(value.trim());
  if (!m) throw new Error(`invalid ${name} value "${value}"`);
  return Number(m[1]) * TIME_UNITS[m[2] || "s"] * 1000;
}

/** The settings of one service: smtpd_policy_service_* with the service's own overrides. */
export function policySettings(c: Config, svc: PolicyService): PolicySettings {
  const s = svc.settings;
  const pick = (name: keyof PolicyService["settings"]) =>
    s[name] ?? c.str(`smtpd_policy_service_${name}`);
  const timeoutMs = timeMs("timeout", pick("timeout"));
  const tryLimit = Number(pick("try_limit"));
  if (!Number.isSafeInteger(tryLimit) || tryLimit < 1) {
    throw new Error(`invalid try_limit value "${pick("try_limit")}" (min 1)`);
  }
  if (timeoutMs < 1000) throw new Error(`invalid timeout value "${pick("timeout")}" (min 1s)`);
  return {
    timeoutMs,
    maxIdleMs: timeMs("max_idle", pick("max_idle")),
    maxTtlMs: timeMs("max_ttl", pick("max_ttl")),
    tryLimit,
    retryDelayMs: timeMs("retry_delay", pick("retry_delay")),
    defaultAction: pick("default_action").trim(),
    policyContext: pick("policy_context"),
    requestLimit: c.int("smtpd_policy_service_request_limit"),
  };
}

/** A failed exchange: the connection is closed and the request tried again. */
class PolicyError extends Error {
  override readonly name = "PolicyError";
}

interface PooledConn {
  conn: Deno.Conn;
  created: number;
  lastUsed: number;
  requests: number;
  idleTimer?: ReturnType<typeof setTimeout>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Formats a request: `name=value` lines and the empty line; LF and CR in values become "?". */
export function formatPolicyRequest(attrs: readonly (readonly [string, string])[]): Uint8Array {
  const text = attrs.map(([k, v]) => `${k}=${v.replace(/[\r\n]/g, "?")}\n`).join("") + "\n";
  return encoder.encode(text);
}

/**
 * Parses a complete answer (the bytes up to and including the empty
 * line): the first `action` value. Throws PolicyError for a line that is
 * not `name=value`, control characters, or no action.
 */
export function parsePolicyAnswer(text: string): string {
  let action: string | undefined;
  for (const line of text.split("\n")) {
    if (line === "") break;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new PolicyError(`missing '=' after attribute name in "${printable(line)}"`);
    const name = line.slice(0, eq);
    const value = line.slice(eq + 1);
    // Nothing that could break an SMTP reply or a log line gets through.
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(value)) {
      throw new PolicyError(`control character in attribute ${printable(name)}`);
    }
    if (name === "action" && action === undefined) action = value;
  }
  if (action === undefined) throw new PolicyError("missing attribute action in answer");
  return action;
}

function printable(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.slice(0, 100).replace(/[\x00-\x1f\x7f]/g, "?");
}

/** One policy service: its settings, its idle connections, its requests. */
export class PolicyClient {
  readonly #idle: PooledConn[] = [];
  readonly #connect: (ep: PolicyEndpoint) => Promise<Deno.Conn>;
  readonly #now: () => number;
  readonly #warn: (msg: string) => void;

  constructor(
    readonly service: PolicyService,
    readonly settings: PolicySettings,
    opts: PolicyOptions,
  ) {
    this.#warn = opts.warn;
    this.#now = opts.now ?? Date.now;
    this.#connect = opts.connect ??
      ((ep) =>
        ep.kind === "inet"
          ? Deno.connect({ hostname: ep.host, port: ep.port })
          : Deno.connect({ transport: "unix", path: ep.path }));
  }

  /**
   * Asks the service; the action it answers, or the default action (with
   * a warning) when it could not answer within try_limit attempts.
   * `attrs` come without policy_context, which is appended here.
   */
  async query(attrs: readonly (readonly [string, string])[]): Promise<string> {
    const request = formatPolicyRequest([...attrs, [
      "policy_context",
      this.settings.policyContext,
    ]]);
    let last = "";
    for (let attempt = 0; attempt < this.settings.tryLimit; attempt++) {
      if (attempt > 0) await sleep(this.settings.retryDelayMs);
      let pc: PooledConn | null = null;
      try {
        pc = await this.#take();
        const { action, reuse } = await this.#exchange(pc, request);
        if (reuse) this.#give(pc);
        else close(pc);
        return action;
      } catch (e) {
        if (pc) close(pc);
        last = (e as Error).message;
      }
    }
    this.#warn(`problem talking to server ${this.service.server}: ${last}`);
    return this.settings.defaultAction;
  }

  /** Closes the idle connections (at stop, and in tests). */
  close(): void {
    for (const pc of this.#idle.splice(0)) close(pc);
  }

  async #take(): Promise<PooledConn> {
    const now = this.#now();
    while (this.#idle.length) {
      const pc = this.#idle.pop()!;
      clearTimeout(pc.idleTimer);
      if (
        now - pc.lastUsed < this.settings.maxIdleMs && now - pc.created < this.settings.maxTtlMs
      ) {
        return pc;
      }
      close(pc);
    }
    const conn = await withTimeout(
      this.#connect(this.service.endpoint),
      this.settings.timeoutMs,
      (c) => c.close(),
    ).catch((e) => {
      throw new PolicyError(`connect: ${(e as Error).message}`);
    });
    return { conn, created: now, lastUsed: now, requests: 0 };
  }

  #give(pc: PooledConn): void {
    pc.requests++;
    pc.lastUsed = this.#now();
    const limit = this.settings.requestLimit;
    if ((limit > 0 && pc.requests >= limit) || pc.lastUsed - pc.created >= this.settings.maxTtlMs) {
      close(pc);
      return;
    }
    // An idle connection does not outlive max_idle, nor keep the process alive.
    const timer = setTimeout(() => {
      const i = this.#idle.indexOf(pc);
      if (i >= 0) this.#idle.splice(i, 1);
      close(pc);
    }, this.settings.maxIdleMs);
    Deno.unrefTimer(timer);
    pc.idleTimer = timer;
    this.#idle.push(pc);
  }

  /** Writes the request and reads one answer, within the timeout. */
  #exchange(pc: PooledConn, request: Uint8Array): Promise<{ action: string; reuse: boolean }> {
    const work = (async () => {
      let off = 0;
      while (off < request.length) off += await pc.conn.write(request.subarray(off));
      const buf = new Uint8Array(MAX_ANSWER_BYTES + 1);
      let len = 0;
      for (;;) {
        const n = await pc.conn.read(buf.subarray(len));
        if (n === null) throw new PolicyError("connection closed by policy server");
        const from = Math.max(0, len - 1);
        len += n;
        const view = buf.subarray(0, len);
        const end = answerEnd(view, from);
        if (end >= 0) {
          const action = parsePolicyAnswer(decoder.decode(view.subarray(0, end)));
          // Bytes after the answer were never asked for: this connection is not reused.
          return { action, reuse: end === len };
        }
        if (len > MAX_ANSWER_BYTES) throw new PolicyError("answer too long");
      }
    })();
    return withTimeout(work, this.settings.timeoutMs, () => close(pc)).catch((e) => {
      throw e instanceof PolicyError ? e : new PolicyError((e as Error).message);
    });
  }
}

/** Index just past the empty line ending an answer ("\n\n", or "\n" first), or -1. */
function answerEnd(b: Uint8Array, from: number): number {
  if (b.length > 0 && b[0] === 0x0a) return 1;
  for (let i = Math.max(1, from); i < b.length; i++) {
    if (b[i] === 0x0a && b[i - 1] === 0x0a) return i + 1;
  }
  return -1;
}

function close(pc: PooledConn): void {
  clearTimeout(pc.idleTimer);
  try {
    pc.conn.close();
  } catch {
    // already closed
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * `p`, or a timeout error after `ms`; `cleanup` gets a result that arrives
 * too late (a connection opened after the deadline is closed, not leaked).
 */
function withTimeout<T>(p: Promise<T>, ms: number, cleanup: (late: T) => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new PolicyError(`timeout after ${Math.round(ms / 1000)}s`));
    }, ms);
  });
  p.then((v) => {
    if (timedOut) cleanup(v);
  }, () => {});
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The policy services of one smtpd process, by their check_policy_service argument. */
export class PolicyClients {
  readonly #clients = new Map<string, PolicyClient>();

  constructor(readonly config: Config, readonly opts: PolicyOptions) {}

  /** The client for an argument; throws (PolicyServiceError, Error) when it is malformed. */
  get(spec: string): PolicyClient {
    let c = this.#clients.get(spec);
    if (!c) {
      const svc = parsePolicyService(spec, this.config.str("queue_directory"));
      c = new PolicyClient(svc, policySettings(this.config, svc), this.opts);
      this.#clients.set(spec, c);
    }
    return c;
  }

  /** Closes every idle connection. */
  close(): void {
    for (const c of this.#clients.values()) c.close();
  }
}
