/**
 * check_host() of RFC 7208 (sections 4 to 6): the SPF evaluation of one
 * client address for one domain, over an injected resolver.
 *
 * Every lookup goes through `opts.resolver` (callers own time-outs and the
 * sandbox), and the same question is asked once per evaluation. Nothing is
 * kept between calls and no timer is started: the elapsed-time limit is
 * checked against `opts.now` before each query.
 *
 * Limits (section 4.6.4), each a permerror when exceeded unless said:
 * - 10 terms that query DNS (include, a, mx, ptr, exists, redirect), counted
 *   as they are evaluated, across includes and redirects; the record of
 *   the domain first checked and the exp= lookup are not counted;
 * - 2 "void" terms: a, mx, ptr or exists whose query found nothing
 *   (NXDOMAIN or no records). Only the term's own query counts: the address
 *   lookups of MX and PTR names do not, nor does %{p};
 * - 10 MX records per mx (more is a permerror), 10 PTR names per ptr or
 *   %{p} (the rest are ignored);
 * - 20 s of elapsed time (temperror).
 *
 * DNS failures: a temporary DnsError (SERVFAIL, time-out, an unconfirmed
 * answer) is a temperror, except in ptr and %{p} (no match, "unknown") and
 * for exp= (no explanation), as sections 5.5, 7.3 and 6.2 say.
 *
 * @module
 */
import { classifyDnsError, type DnsError, type FullResolver, type MxRecord } from "../dns/mod.ts";
import { domainToASCII } from "node:url";
import { type ClientIp, parseClientIp, parseRecordIp, reverseName, samePrefix } from "./ip.ts";
import {
  expandMacro,
  MacroSyntaxError,
  type MacroValues,
  parseMacroString,
  targetName,
} from "./macro.ts";
import {
  type Directive,
  type DomainSpec,
  parseRecord,
  selectRecord,
  type SpfRecord,
  SpfSyntaxError,
} from "./record.ts";

/** The seven results of RFC 7208 section 2.6. */
export type SpfResultCode =
  | "pass"
  | "fail"
  | "softfail"
  | "neutral"
  | "none"
  | "permerror"
  | "temperror";

/** What {@link checkHost} found. */
export interface SpfResult {
  result: SpfResultCode;
  /** The term that decided, as written in the record ("-all", "include:_spf.example.com"). */
  mechanism?: string;
  /** For "fail": the domain's exp= explanation, when it has a usable one. Third-party text. */
  explanation?: string;
  /** For "permerror" and "temperror": why, for logs and the Received-SPF header. */
  problem?: string;
  /** The domain checked, lowercase, without a trailing dot. */
  domain: string;
}

/** Processing limits of RFC 7208 section 4.6.4. */
export interface SpfLimits {
  /** Terms that query DNS (include, a, mx, ptr, exists, redirect). @default 10 */
  lookups?: number;
  /** Terms whose query found nothing (NXDOMAIN or no records). @default 2 */
  voidLookups?: number;
  /** MX records one mx mechanism may have. @default 10 */
  mxRecords?: number;
  /** PTR names one ptr mechanism or %{p} looks at. @default 10 */
  ptrNames?: number;
  /** Milliseconds the whole check may take, by `now`; temperror beyond. @default 20000 */
  elapsedMs?: number;
}

/** Options for {@link checkHost}. */
export interface CheckHostOptions {
  /** Every DNS lookup goes through it. */
  resolver: FullResolver;
  /** The HELO/EHLO name: the "h" macro, and the sender's domain for the null sender. */
  helo?: string;
  /** This host's name, for the "r" macro in explanations. @default "unknown" */
  receivingHost?: string;
  /** The clock: the "t" macro and the elapsed-time limit. @default () => new Date() */
  now?: () => Date;
  limits?: SpfLimits;
}

/** Ends the evaluation: permerror or temperror, and why. */
class Abort extends Error {
  override readonly name = "Abort";
  constructor(readonly result: "permerror" | "temperror", readonly problem: string) {
    super(problem);
  }
}

/** A query's outcome: records, nothing there (void), or a failure. */
type Outcome<T> =
  | { kind: "records"; records: T[] }
  | { kind: "void"; status: "nxdomain" | "nodata" }
  | { kind: "error"; error: DnsError };

/** The state of one check_host() call, shared by its includes and redirects. */
interface Run {
  resolver: FullResolver;
  ip: ClientIp;
  sender: string;
  local: string;
  senderDomain: string;
  helo: string;
  receiver: string;
  now: () => Date;
  limits: Required<SpfLimits>;
  started: number;
  lookups: number;
  voids: number;
  answers: Map<string, Promise<Outcome<unknown>>>;
}

/** What evaluating one domain's record gave (errors are thrown as {@link Abort}). */
interface Evaluation {
  result: "pass" | "fail" | "softfail" | "neutral" | "none";
  mechanism?: string;
  explanation?: string;
}

const RESULTS = { "+": "pass", "-": "fail", "~": "softfail", "?": "neutral" } as const;

/**
 * check_host(<ip>, <domain>, <sender>) of RFC 7208. `sender` is the MAIL
 * FROM address ("" for the null sender, which becomes postmaster@<helo>;
 * a missing local part becomes "postmaster"); `domain` is the domain to
 * check, usually the sender's or the HELO name ("" takes the sender's).
 * A malformed domain (section 4.3) or one without an SPF record is
 * "none". Non-ASCII domains are checked as A-labels (RFC 8616).
 *
 * Throws TypeError only when `ip` is not an IP address.
 */
export async function checkHost(
  ip: string,
  domain: string,
  sender: string,
  opts: CheckHostOptions,
): Promise<SpfResult> {
  const client = parseClientIp(ip);
  if (!client) throw new TypeError(`checkHost: not an IP address: ${JSON.stringify(ip)}`);
  const helo = opts.helo ?? "";
  let full = sender === "" ? `postmaster@${helo || domain}` : sender;
  let at = full.lastIndexOf("@");
  if (at < 0) full = `postmaster@${full}`;
  else if (at === 0) full = `postmaster${full}`;
  at = full.lastIndexOf("@");
  const senderDomain = asciiDomain(full.slice(at + 1));
  const checked = asciiDomain(domain === "" ? senderDomain : domain).toLowerCase();
  const now = opts.now ?? (() => new Date());
  const run: Run = {
    resolver: opts.resolver,
    ip: client,
    sender: `${full.slice(0, at)}@${senderDomain}`,
    local: full.slice(0, at),
    senderDomain,
    helo: opts.helo ?? "unknown",
    receiver: opts.receivingHost ?? "unknown",
    now,
    limits: {
      lookups: opts.limits?.lookups ?? 10,
      voidLookups: opts.limits?.voidLookups ?? 2,
      mxRecords: opts.limits?.mxRecords ?? 10,
      ptrNames: opts.limits?.ptrNames ?? 10,
      elapsedMs: opts.limits?.elapsedMs ?? 20_000,
    },
    started: now().getTime(),
    lookups: 0,
    voids: 0,
    answers: new Map(),
  };
  if (!isInitialDomain(checked)) return { result: "none", domain: checked };
  try {
    return { ...await evaluate(run, checked, "top"), domain: checked };
  } catch (e) {
    if (e instanceof Abort) return { result: e.result, problem: e.problem, domain: checked };
    throw e;
  }
}

/** A domain as A-labels when it has non-ASCII characters ("" when it cannot be converted). */
function asciiDomain(d: string): string {
  const name = d.endsWith(".") ? d.slice(0, -1) : d;
  return /[^\x20-\x7e]/.test(name) ? domainToASCII(name) : name;
}

/**
 * RFC 7208 section 4.3: the domain must be a multi-label name with labels
 * of 1 to 63 characters, at most 253 in all; a domain literal ("[192.0.2.1]")
 * or an address is not one.
 */
function isInitialDomain(name: string): boolean {
  if (name.length > 253 || !/^[\x21-\x7e]+$/.test(name) || /[[\]]/.test(name)) return false;
  const labels = name.split(".");
  if (labels.length < 2 || labels.some((l) => l.length === 0 || l.length > 63)) return false;
  return !/^\d+$/.test(labels[labels.length - 1]);
}

/**
 * Evaluates `domain`'s record: the top domain, an include's target (no
 * explanation is computed: section 6.2) or a redirect's.
 */
async function evaluate(
  run: Run,
  domain: string,
  role: "top" | "include" | "redirect",
): Promise<Evaluation> {
  const txt = await query<string[]>(run, "TXT", domain);
  if (txt.kind === "void") return { result: "none" };
  if (txt.kind === "error") throw temporary(txt.error);
  const selected = selectRecord(txt.records);
  if (selected.kind === "none") return { result: "none" };
  if (selected.kind === "multiple") {
    throw new Abort("permerror", `${domain} has ${selected.count} SPF records`);
  }
  let record: SpfRecord;
  try {
    record = parseRecord(selected.text);
  } catch (e) {
    if (e instanceof SpfSyntaxError) {
      throw new Abort("permerror", `bad SPF record of ${domain}: ${e.message}`);
    }
    throw e;
  }
  for (const d of record.directives) {
    if (!await matches(run, d, domain)) continue;
    const result = RESULTS[d.qualifier];
    const explanation = result === "fail" && record.exp && role !== "include"
      ? await explain(run, record.exp, domain)
      : undefined;
    return { result, mechanism: d.term, ...(explanation === undefined ? {} : { explanation }) };
  }
  // A record with "all" never gets here: all matches.
  if (record.redirect) {
    countLookup(run);
    const target = targetName(await expand(run, record.redirect, domain));
    const r = target === null
      ? { result: "none" as const }
      : await evaluate(run, target, "redirect");
    if (r.result === "none") {
      throw new Abort(
        "permerror",
        `redirect=${record.redirect.text} of ${domain}: ${noRecord(target)}`,
      );
    }
    return r;
  }
  return { result: "neutral" };
}

/** Whether a directive's mechanism matches; DNS and limit errors are thrown as {@link Abort}. */
async function matches(run: Run, d: Directive, domain: string): Promise<boolean> {
  const m = d.mechanism;
  switch (m.kind) {
    case "all":
      return true;
    case "ip4":
    case "ip6":
      return run.ip.v4 === (m.kind === "ip4") && samePrefix(run.ip.bytes, m.network, m.prefix);
    case "include": {
      countLookup(run);
      const target = targetName(await expand(run, m.domain, domain));
      const r = target === null
        ? { result: "none" as const }
        : await evaluate(run, target, "include");
      if (r.result === "none") {
        throw new Abort(
          "permerror",
          `${d.term} of ${domain}: ${noRecord(target)}`,
        );
      }
      return r.result === "pass";
    }
    case "a": {
      countLookup(run);
      const target = await mechanismTarget(run, m.domain, domain);
      if (target === null) return false;
      const addrs = await addresses(run, target);
      if (addrs.kind === "void") return countVoid(run, d.term);
      if (addrs.kind === "error") throw temporary(addrs.error);
      return inNetworks(run, addrs.records, m.cidr4, m.cidr6);
    }
    case "mx": {
      countLookup(run);
      const target = await mechanismTarget(run, m.domain, domain);
      if (target === null) return false;
      const mx = await query<MxRecord>(run, "MX", target);
      if (mx.kind === "void") return countVoid(run, d.term);
      if (mx.kind === "error") throw temporary(mx.error);
      if (mx.records.length > run.limits.mxRecords) {
        throw new Abort(
          "permerror",
          `${d.term} of ${domain}: ${target} has ${mx.records.length} MX records (limit ${run.limits.mxRecords})`,
        );
      }
      const names = new Set<string>();
      for (const r of mx.records) {
        const host = targetName(r.exchange);
        if (host !== null) names.add(host.toLowerCase());
      }
      // All hosts at once; a match wins over another host's lookup failure.
      const found = await Promise.all([...names].map((n) => addresses(run, n)));
      let failure: DnsError | undefined;
      for (const f of found) {
        if (f.kind === "records" && inNetworks(run, f.records, m.cidr4, m.cidr6)) return true;
        if (f.kind === "error") failure ??= f.error;
      }
      if (failure) throw temporary(failure);
      return false;
    }
    case "ptr": {
      countLookup(run);
      const target = await mechanismTarget(run, m.domain, domain);
      if (target === null) return false;
      const names = await ptrNames(run);
      if (names === "void") return countVoid(run, d.term);
      // Section 5.5 allows skipping the names outside the target before validating.
      const candidates = names.filter((n) => isWithin(n, target));
      return (await validated(run, candidates)).length > 0;
    }
    case "exists": {
      countLookup(run);
      const target = targetName(await expand(run, m.domain, domain));
      if (target === null) return false;
      // Always A, whatever the client's family (section 5.7).
      const a = await query<string>(run, "A", target);
      if (a.kind === "void") return countVoid(run, d.term);
      if (a.kind === "error") throw temporary(a.error);
      return true;
    }
  }
}

/** The target of a, mx or ptr: the domain-spec expanded, or the current domain. */
async function mechanismTarget(
  run: Run,
  spec: DomainSpec | undefined,
  domain: string,
): Promise<string | null> {
  return spec ? targetName(await expand(run, spec, domain)) : domain;
}

function countLookup(run: Run): void {
  run.lookups++;
  if (run.lookups > run.limits.lookups) {
    throw new Abort(
      "permerror",
      `more than ${run.limits.lookups} DNS-querying terms (include, a, mx, ptr, exists, redirect)`,
    );
  }
}

/** Counts a void term; returns false (no match) or throws past the limit. */
function countVoid(run: Run, term: string): false {
  run.voids++;
  if (run.voids > run.limits.voidLookups) {
    throw new Abort(
      "permerror",
      `more than ${run.limits.voidLookups} void DNS lookups (the last by ${JSON.stringify(term)})`,
    );
  }
  return false;
}

/** Why an include or redirect target gave "none". */
function noRecord(target: string | null): string {
  return target === null ? "the target is not a valid domain name" : `${target} has no SPF record`;
}

function temporary(e: DnsError): Abort {
  return new Abort("temperror", e.message);
}

/** True when `name` is `domain` or one of its subdomains (case-insensitive). */
function isWithin(name: string, domain: string): boolean {
  const n = name.toLowerCase();
  const d = domain.toLowerCase();
  return n === d || n.endsWith(`.${d}`);
}

function inNetworks(run: Run, addrs: string[], cidr4: number, cidr6: number): boolean {
  for (const a of addrs) {
    const b = parseRecordIp(a, run.ip.v4);
    if (b && samePrefix(run.ip.bytes, b, run.ip.v4 ? cidr4 : cidr6)) return true;
  }
  return false;
}

/** The A (IPv4 client) or AAAA (IPv6 client) records of `name`. */
function addresses(run: Run, name: string): Promise<Outcome<string>> {
  return query<string>(run, run.ip.v4 ? "A" : "AAAA", name);
}

/** The client's PTR names (the first `ptrNames`), "void" when there are none; errors give []. */
async function ptrNames(run: Run): Promise<string[] | "void"> {
  const ptr = await query<string>(run, "PTR", reverseName(run.ip));
  if (ptr.kind === "void") return "void";
  if (ptr.kind === "error") return [];
  const names: string[] = [];
  for (const r of ptr.records.slice(0, run.limits.ptrNames)) {
    const n = targetName(r);
    if (n !== null) names.push(n);
  }
  return names;
}

/** The names among `names` whose addresses include the client's; lookup errors skip a name. */
async function validated(run: Run, names: string[]): Promise<string[]> {
  const found = await Promise.all(names.map((n) => addresses(run, n)));
  return names.filter((_, i) => {
    const f = found[i];
    return f.kind === "records" && inNetworks(run, f.records, 32, 128);
  });
}

/**
 * The "p" macro (section 7.3): a validated name of the client, preferring
 * <domain> itself, then a subdomain of it; "unknown" when there is none.
 */
async function validatedName(run: Run, domain: string): Promise<string> {
  const names = await ptrNames(run);
  if (names === "void") return "unknown";
  const ok = await validated(run, names);
  return ok.find((n) => n.toLowerCase() === domain) ??
    ok.find((n) => isWithin(n, domain)) ?? ok[0] ?? "unknown";
}

function macroValues(run: Run, domain: string): MacroValues {
  return {
    sender: run.sender,
    local: run.local,
    senderDomain: run.senderDomain,
    domain,
    ip: run.ip,
    helo: run.helo,
    receiver: run.receiver,
    now: run.now,
    validatedName: () => validatedName(run, domain),
  };
}

function expand(run: Run, spec: DomainSpec, domain: string): Promise<string> {
  return expandMacro(spec.parts, macroValues(run, domain));
}

/**
 * The explanation of a fail (section 6.2): exp='s name expanded, its one
 * TXT record expanded as explanation text. Any failure (no name, a DNS
 * error, not exactly one record, bad syntax, a character outside printable
 * US-ASCII before or after expansion) means none.
 * Not counted against the lookup limits.
 */
async function explain(run: Run, exp: DomainSpec, domain: string): Promise<string | undefined> {
  try {
    const target = targetName(await expand(run, exp, domain));
    if (target === null) return undefined;
    const txt = await query<string[]>(run, "TXT", target);
    if (txt.kind !== "records" || txt.records.length !== 1) return undefined;
    const parts = parseMacroString(txt.records[0].join(""), "explain");
    const text = await expandMacro(parts, macroValues(run, domain));
    // US-ASCII for an SMTP reply (section 6.2), also after a UTF-8 local part was put in.
    return /^[\x20-\x7e]*$/.test(text) ? text : undefined;
  } catch (e) {
    if (e instanceof Abort || e instanceof MacroSyntaxError) return undefined;
    throw e;
  }
}

/**
 * One DNS question, asked once per evaluation. Never rejects for a DNS
 * failure: the outcome says it. Throws {@link Abort} (temperror) when the
 * elapsed-time limit has passed.
 */
function query<T>(run: Run, type: "TXT" | "A" | "AAAA" | "MX" | "PTR", name: string) {
  if (run.now().getTime() - run.started > run.limits.elapsedMs) {
    throw new Abort("temperror", `SPF evaluation took longer than ${run.limits.elapsedMs} ms`);
  }
  // DNS names are case-insensitive: one spelling for the resolver and the memo.
  const qname = name.toLowerCase();
  const key = `${type} ${qname}`;
  let answer = run.answers.get(key);
  if (!answer) {
    answer = ask(run.resolver, type, qname);
    run.answers.set(key, answer);
  }
  return answer as Promise<Outcome<T>>;
}

async function ask(
  resolver: FullResolver,
  type: "TXT" | "A" | "AAAA" | "MX" | "PTR",
  name: string,
): Promise<Outcome<unknown>> {
  let records: unknown[];
  try {
    switch (type) {
      case "TXT":
        records = await resolver.resolveTxt(name);
        break;
      case "A":
        records = await resolver.resolveA(name);
        break;
      case "AAAA":
        records = await resolver.resolveAaaa(name);
        break;
      case "MX":
        records = await resolver.resolveMx(name);
        break;
      case "PTR":
        records = await resolver.resolvePtr(name);
        break;
    }
  } catch (e) {
    const error = classifyDnsError(e, name, type);
    if (error.kind === "temporary") return { kind: "error", error };
    return { kind: "void", status: error.status === "nodata" ? "nodata" : "nxdomain" };
  }
  return records.length === 0 ? { kind: "void", status: "nodata" } : { kind: "records", records };
}
