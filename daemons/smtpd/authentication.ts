/**
 * Postwarden's own message authentication in smtpd (Postfix sites add it
 * with OpenDKIM, OpenDMARC and an SPF policy daemon): the checks
 * postwarden_authentication_checks names, made on every message received
 * over SMTP and recorded in one Authentication-Results header (RFC 8601)
 * above smtpd's Received: header.
 *
 * - spf: RFC 7208 for the MAIL FROM domain (HELO for the null sender),
 *   the same verdict postwarden_reject_spf_fail uses (restrictions.ts
 *   spfVerdict: one check per transaction).
 * - dkim: every DKIM-Signature (lib/dkim), hashed as the message arrives.
 *   The client's content only: smtpd's own Received: header and PREPEND
 *   results are not part of what was signed.
 * - dmarc: RFC 7489 for the From: domain over the two (lib/dmarc); it
 *   needs both, so listing it makes both checks.
 * - arc: the message's Authenticated Received Chain (RFC 8617, lib/arc):
 *   recorded as arc=pass/fail/none with the oldest-pass; what a pass is
 *   worth (a forwarder to trust despite a DMARC fail) is not decided here.
 *
 * The verdict is a record only; what to do with it is a restriction:
 * postwarden_reject_spf_fail at MAIL FROM, and postwarden_reject_dmarc_fail
 * in smtpd_end_of_data_restrictions (which makes the checks it needs even
 * when this list does not name them).
 *
 * Incoming Authentication-Results headers that carry our authserv-id are
 * removed (RFC 8601 section 5): only ours may claim it. The header and the
 * removal travel to cleanup as end-of-data edits, like a milter's
 * (lib/cleanup ContentEdit), ahead of the milters' own.
 *
 * @module
 */
import type { CleanupEnvelope, CleanupSink, ContentEdit } from "../../lib/cleanup/client.ts";
import type { MessageActions } from "../../lib/cleanup/client.ts";
import type { Config } from "../../lib/config/mod.ts";
import { restrictionItems } from "../../lib/config/mod.ts";
import { type NetworkList, parseNetworkList } from "../../lib/config/network_list.ts";
import type { FullResolver } from "../../lib/dns/mod.ts";
import type { DkimResult, DkimVerifier } from "../../lib/dkim/mod.ts";
import type { DmarcResult } from "../../lib/dmarc/mod.ts";
import type { AuthResult } from "../../lib/authres/mod.ts";
import type { ArcValidation, ArcValidator } from "../../lib/arc/mod.ts";
import type { ArcSealInput } from "../../lib/cleanup/client.ts";
import type { SpfResult } from "../../lib/spf/mod.ts";
import { HeaderSplitter } from "../../lib/mime/mod.ts";

/** A check postwarden_authentication_checks may name. */
export type AuthMethod = "spf" | "dkim" | "dmarc" | "arc";

/** The authentication settings of one smtpd configuration. */
export interface AuthenticationSettings {
  /** The checks made on every message (dmarc brings spf and dkim); empty: none. */
  methods: ReadonlySet<AuthMethod>;
  /** postwarden_authserv_id. */
  authservId: string;
  /** postwarden_arc_trusted_sealers, lower case. */
  trustedSealers?: string[];
  /** postwarden_dkim_internal_hosts: clients whose mail cleanup may sign. */
  internalHosts: NetworkList;
  /** The checks' libraries; null without checks. */
  libs: CheckLibraries | null;
}

/**
 * The libraries of the checks, loaded only when there are checks: they
 * (node:crypto above all) cost every smtpd process about 6 MB.
 */
export interface CheckLibraries {
  dkim: typeof import("../../lib/dkim/mod.ts");
  dmarc: typeof import("../../lib/dmarc/mod.ts");
  authres: typeof import("../../lib/authres/mod.ts");
  arc: typeof import("../../lib/arc/mod.ts");
}

/**
 * The settings of a configuration. The start refused unknown methods and
 * a DMARC restriction outside the end of data (lib/config support.ts).
 */
export async function authenticationSettings(cfg: Config): Promise<AuthenticationSettings> {
  const methods = new Set<AuthMethod>();
  for (const m of cfg.list("postwarden_authentication_checks")) {
    methods.add(m.toLowerCase() as AuthMethod);
  }
  const eod = restrictionItems(cfg.str("smtpd_end_of_data_restrictions"));
  const classes = cfg.list("smtpd_restriction_classes").flatMap((c) => {
    try {
      return restrictionItems(cfg.str(c));
    } catch {
      return [];
    }
  });
  if ([...eod, ...classes].some((r) => r.toLowerCase() === "postwarden_reject_dmarc_fail")) {
    methods.add("dmarc");
  }
  if (methods.has("dmarc")) {
    methods.add("spf");
    methods.add("dkim");
  }
  const libs = methods.size === 0 ? null : {
    dkim: await import("../../lib/dkim/mod.ts"),
    dmarc: await import("../../lib/dmarc/mod.ts"),
    authres: await import("../../lib/authres/mod.ts"),
    arc: await import("../../lib/arc/mod.ts"),
  };
  return {
    methods,
    libs,
    authservId: cfg.str("postwarden_authserv_id").trim(),
    trustedSealers: cfg.list("postwarden_arc_trusted_sealers").map((d) =>
      d.toLowerCase().replace(/\.$/, "")
    ),
    internalHosts: parseNetworkList(
      "postwarden_dkim_internal_hosts",
      cfg.list("postwarden_dkim_internal_hosts"),
    ),
  };
}

/** What the checks of one message found. */
export interface MessageVerdict {
  /** The DMARC evaluation, when made; null when the message has no usable From: domain. */
  dmarc?: DmarcResult | null;
  /** The Authentication-Results header value. */
  header: string;
  /**
   * A DMARC fail a trusted ARC sealer's pass overrides (RFC 8617 section
   * 7.2.1): the sealer's domain. postwarden_reject_dmarc_fail lets it
   * through.
   */
  dmarcOverride?: string;
  /** What cleanup's ARC seal needs (when the arc check ran). */
  arcSeal?: ArcSealInput;
  /** The edits for cleanup: forged headers removed, ours on top. */
  edits: ContentEdit[];
}

/** What {@link MessageAuthentication.verdict} needs from the session. */
export interface VerdictInput {
  /** The transaction's SPF verdict (made now if not yet); null without a client address. */
  spf: () => Promise<SpfResult | null>;
  sender: string;
  helo: string;
  resolver: FullResolver;
}

/**
 * The checks of one message: fed the content as it goes to cleanup (the
 * first write, smtpd's own header lines, excepted), then asked for the
 * verdict at the end of data.
 */
export class MessageAuthentication {
  readonly #dkim: DkimVerifier | null;
  readonly #arc: ArcValidator | null;
  /** The From: fields, for DMARC (DkimVerifier keeps its own copy of the header section). */
  readonly #headers = new HeaderSplitter({ maxBytes: 64 * 1024, maxSectionBytes: 1 << 20 });
  #from: string[] | null = null;
  #ownHeaders = true;

  readonly #libs: CheckLibraries;

  constructor(readonly settings: AuthenticationSettings) {
    if (!settings.libs) throw new Error("message authentication without its libraries");
    this.#libs = settings.libs;
    this.#dkim = settings.methods.has("dkim") ? new this.#libs.dkim.DkimVerifier() : null;
    this.#arc = settings.methods.has("arc") ? new this.#libs.arc.ArcValidator() : null;
  }

  /** A chunk of the message as it goes to cleanup. */
  write(chunk: Uint8Array): void {
    // session.ts and bdat.ts write smtpd's PREPEND and Received: lines first, as one chunk.
    if (this.#ownHeaders) {
      this.#ownHeaders = false;
      return;
    }
    this.#dkim?.write(chunk);
    this.#arc?.write(chunk);
    if (this.#from === null && this.settings.methods.has("dmarc")) {
      const r = this.#headers.push(chunk);
      if (r.done) this.#from = fromValues(r.headers!);
    }
  }

  /** The checks' results, made now (DNS lookups with the session's resolver). */
  async verdict(input: VerdictInput): Promise<MessageVerdict> {
    const m = this.settings.methods;
    const results: AuthResult[] = [];
    const spf = m.has("spf") ? await input.spf() : null;
    if (spf) results.push(spfResult(spf, input));
    const dkim = this.#dkim ? await this.#dkim.finish(input.resolver) : [];
    if (m.has("dkim")) results.push(...dkimResults(dkim));
    let dmarc: DmarcResult | null | undefined;
    if (m.has("dmarc")) {
      this.#from ??= fromValues(this.#headers.end().headers);
      const { authorDomain, checkDmarc } = this.#libs.dmarc;
      const author = authorDomain(this.#from);
      if ("error" in author) {
        dmarc = null;
        results.push({ method: "dmarc", result: "permerror", reason: author.error });
      } else {
        dmarc = await checkDmarc({
          fromDomain: author.domain,
          ...(spf ? { spf: { result: spf.result, domain: spf.domain } } : {}),
          dkim: dkim.map((d) => ({ result: d.result, domain: d.domain })),
          resolver: input.resolver,
        });
        results.push(dmarcResult(dmarc));
      }
    }
    const arc = this.#arc ? await this.#arc.finish(input.resolver) : null;
    if (arc) results.push(arcResult(arc));
    const sealer = dmarc?.result === "fail" && arc
      ? trustedArcPass(arc, this.settings.trustedSealers ?? [])
      : null;
    if (sealer) {
      const i = results.findIndex((r) => r.method === "dmarc");
      results[i] = {
        ...results[i],
        reason: `overridden by ARC pass from trusted sealer ${sealer}`,
      };
    }
    const header = this.#libs.authres.authenticationResults(this.settings.authservId, results);
    return {
      ...(dmarc !== undefined ? { dmarc } : {}),
      ...(sealer ? { dmarcOverride: sealer } : {}),
      ...(arc
        ? {
          arcSeal: {
            cv: arc.status,
            instance: arc.instance,
            authResults: header.slice(header.indexOf(";") + 1),
          },
        }
        : {}),
      header,
      edits: [
        { op: "deleteAuthResults", authservId: this.settings.authservId },
        { op: "insertHeader", index: 0, name: "Authentication-Results", value: ` ${header}` },
      ],
    };
  }
}

/**
 * The trusted sealer whose ARC pass overrides a DMARC fail: the chain
 * passes, its newest set was sealed by a domain of `trusted`, and that
 * hop's ARC-Authentication-Results say dmarc=pass (the message passed
 * DMARC where the trusted forwarder received it). Null otherwise.
 */
export function trustedArcPass(arc: ArcValidation, trusted: string[]): string | null {
  if (arc.status !== "pass" || trusted.length === 0) return null;
  const newest = arc.sets.find((s) => s.instance === arc.instance);
  if (!newest || !trusted.includes(newest.sealDomain)) return null;
  return /(?:^|;)\s*dmarc\s*=\s*pass\b/i.test(newest.authResults) ? newest.sealDomain : null;
}

function fromValues(headers: { name: string; value: string }[]): string[] {
  return headers.filter((h) => h.name.toLowerCase() === "from").map((h) => h.value);
}

function spfResult(spf: SpfResult, input: VerdictInput): AuthResult {
  const props: [string, string][] = input.sender === ""
    ? [["smtp.helo", input.helo]]
    : [["smtp.mailfrom", input.sender]];
  return {
    method: "spf",
    result: spf.result,
    ...(spf.problem ? { reason: spf.problem } : {}),
    props,
  };
}

function dkimResults(results: DkimResult[]): AuthResult[] {
  if (results.length === 0) return [{ method: "dkim", result: "none" }];
  return results.map((r) => ({
    method: "dkim",
    result: r.result,
    ...(r.result === "pass" ? {} : { reason: r.reason }),
    props: [
      ["header.d", r.domain],
      ["header.s", r.selector],
      // RFC 6008: enough of b= to tell signatures apart.
      ["header.b", r.signatureB.slice(0, 8)],
    ].filter(([, v]) => v !== "") as [string, string][],
  }));
}

function arcResult(a: ArcValidation): AuthResult {
  return {
    method: "arc",
    result: a.status,
    ...(a.status === "fail" ? { reason: a.reason } : {}),
    ...(a.oldestPass !== undefined
      ? { props: [["header.oldest-pass", String(a.oldestPass)]] as [string, string][] }
      : {}),
  };
}

function dmarcResult(d: DmarcResult): AuthResult {
  return {
    method: "dmarc",
    result: d.result,
    ...(d.result === "pass" || d.result === "none" ? {} : { reason: d.reason }),
    props: [
      ["header.from", d.fromDomain],
      // What the policy asked for this message (after pct=), when it failed.
      ...(d.result === "fail" ? [["policy.dmarc", d.disposition] as [string, string]] : []),
    ],
  };
}

/**
 * The cleanup session of a message that is checked: the content goes to
 * cleanup and to the checks as it arrives. A new message (envelope)
 * starts new checks; the session asks {@link AuthSink.checks} for them at
 * the end of data.
 */
export class AuthSink implements CleanupSink {
  #checks: MessageAuthentication | null = null;

  constructor(readonly cleanup: CleanupSink, readonly settings: AuthenticationSettings) {}

  get queueId(): string {
    return this.cleanup.queueId;
  }

  /** The checks of the message being received; null before its envelope. */
  get checks(): MessageAuthentication | null {
    return this.#checks;
  }

  envelope(env: CleanupEnvelope): void {
    this.#checks = new MessageAuthentication(this.settings);
    this.cleanup.envelope(env);
  }

  lateActions(actions: MessageActions, body?: Uint8Array): void {
    this.cleanup.lateActions(actions, body);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#checks?.write(chunk);
    await this.cleanup.write(chunk);
  }

  finish() {
    return this.cleanup.finish();
  }

  abort(): void {
    this.cleanup.abort();
  }
}
