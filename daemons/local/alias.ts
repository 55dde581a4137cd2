/**
 * What local(8) does with one recipient of a delivery request before any
 * mailbox is written: alias lookup and expansion, recursively, with
 * Postfix's loop and duplicate rules (src/local/recipient.c, alias.c,
 * token.c, resolve.c, indirect.c, unknown.c). The result is a list of
 * outcomes (one per destination, each logged by the caller) and a list of
 * addresses to forward through cleanup (forward.ts).
 *
 * Per address (the top-level recipient, then each local address an alias
 * expands to):
 * - nesting deeper than 100 bounces 5.4.6 "recipient nesting limit
 *   exceeded"; an address already handled at the same depth is skipped;
 *   an address named in a Delivered-To header bounces 5.4.6 "mail
 *   forwarding loop for ADDR";
 * - the local part, folded to lower case, is looked up in alias_maps; for
 *   `user+ext`, then `user` (the unmatched `+ext` is added to the
 *   expansion's addresses when propagate_unmatched_extensions has
 *   "alias"). An alias that lists its own name delivers that name to its
 *   mailbox (the self-reference rule); alias expansion deeper than 100
 *   bounces 5.4.6 "alias database loop for NAME". A table that cannot
 *   answer defers 4.3.0 "alias database unavailable", as does an alias
 *   whose value lists nothing;
 * - when `owner-NAME` is an alias too (owner_request_special), the
 *   expansion's sender becomes `owner-NAME@$myorigin` (or the owner
 *   alias's value with expand_owner_alias), its DSN original recipient,
 *   ENVID and RET are dropped, and local addresses of the expansion are
 *   forwarded as new mail rather than delivered here, as Postfix does;
 * - each destination: an address resolving to this local service is
 *   handled recursively; any other address is forwarded (once per
 *   recipient); `|command`, `/file`, `~/file` and `:include:` are checked
 *   against allow_mail_to_commands / allow_mail_to_files for the class
 *   they came from (alias, forward, include; 5.7.1 "mail to command is
 *   restricted" / "mail to file is restricted"; `~` in an alias bounces
 *   5.3.5 as in Postfix, which has no home directory for an alias), then
 *   handed to the host (deliverCommand, deliverFile, includeFile) once
 *   per destination and rights; a host without them defers the recipient
 *   saying so;
 * - :include: files (include.c): their destinations as an alias's, with
 *   the file owner's rights when the alias's were default_privs, their
 *   local addresses sent on as new mail; nesting deeper than 100 bounces
 *   5.4.6;
 * - a name that is not an alias: its .forward (dot_forward.c, through the
 *   host's forwardFile) when it names anything, with the user's rights,
 *   its local addresses sent on as new mail and the user herself to her
 *   mailbox; else its mailbox (once per recipient). A user the host does
 *   not know (no account), or that local_recipient_maps (when set) does
 *   not list, goes to luser_relay when set, else bounces 5.1.1 `unknown
 *   user: "name"`, except postmaster and mailer-daemon, which are
 *   discarded with a warning ("required alias not found"), as Postfix does.
 *
 * Address verification ({@link AliasEnv.verify}): everything above runs
 * as for a delivery, the host's hooks report what they would do instead
 * of doing it, and an address that would be sent on as new mail is an
 * outcome of its own, "forwards to ADDRESS" (Postfix's indirect.c), not a
 * {@link Forward}.
 *
 * Not done: fallback_transport, mailbox transports, duplicate_filter_limit,
 * frozen_delivered_to = no, the owner of an alias database (aliases always
 * run as default_privs). The caller supplies mailbox, command and file
 * delivery and file reading, and decides where an address resolves, so
 * this module does no I/O of its own besides the table lookups.
 *
 * @module
 */
import type { DeliveryOutcome } from "../../lib/outcome/mod.ts";
import { formatPath, quoteAddress, splitAddress, splitExtension } from "../../lib/address/mod.ts";
import type { RecipientStatus } from "../../lib/deliver/mod.ts";
import { DictError, type Maps } from "../../lib/maps/mod.ts";
import { classifyDestination, parseAliasValue } from "./token.ts";
import { fileDestinations } from "./user_files.ts";

/** Postfix's recursion limits (recipient.c and alias.c). */
const MAX_LEVEL = 100;

/** The expansion classes of allow_mail_to_commands and allow_mail_to_files. */
export type ExpansionClass = "alias" | "forward" | "include";

/** One definite result for one destination: logged as `to=<address>`. */
export interface Outcome extends DeliveryOutcome {
  /** The address the result is about (the top-level recipient or an expansion). */
  address: string;
  /** The original recipient to log as `orig_to=` (DeliveryRecipient.orcpt form). */
  orcpt?: string;
  /**
   * The status of the agent mailbox_transport handed the delivery to,
   * which has logged it (local does not): its relay, its remote MTA and,
   * in address verification, the destinations it found.
   */
  passed?: RecipientStatus;
}

/** An address to send on as a new message through cleanup. */
export interface Forward {
  address: string;
  /** Envelope sender of the new message: the original sender or the list owner. */
  sender: string;
  /** The Delivered-To address of the new message: the recipient being delivered. */
  delivered: string;
  /** Original recipient for the new queue file (absent after an owner- alias). */
  orcpt?: string;
  notify?: string[];
  /** The expansion replaced the sender (owner- alias): DSN ENVID and RET are not passed on. */
  ownerSender: boolean;
}

/** What {@link expandRecipient} found. */
export interface Expansion {
  outcomes: Outcome[];
  forwards: Forward[];
}

/** A mailbox delivery, as the caller does it. */
export interface MailboxDelivery {
  /** The mailbox user: the local part folded, without its extension. */
  user: string;
  /** The recipient being delivered (top-level or an alias expansion). */
  address: string;
  /** Return-Path: the original sender, or the owner- address. */
  sender: string;
  /** The Delivered-To address: the top-level recipient. */
  delivered: string;
  /** The original recipient (X-Original-To), when there is one. */
  orcpt?: string;
}

/** A command or file destination: for whom, and with whose rights. */
export interface SpecialDelivery {
  /** The address being delivered (the alias or .forward owner's address). */
  address: string;
  sender: string;
  /** The Delivered-To address. */
  delivered: string;
  orcpt?: string;
  /** Whose rights: an account name, or null for default_privs. */
  account: string | null;
}

/** What expansion needs from the configuration and the host. */
export interface AliasEnv {
  /** alias_maps. */
  aliases: Maps;
  /** local_recipient_maps, or null when empty (every name has a mailbox). */
  localRecipients: Maps | null;
  /** recipient_delimiter ("" for none). */
  delimiters: string;
  /** propagate_unmatched_extensions lists "alias". */
  propagateToAliases: boolean;
  /** owner_request_special. */
  ownerRequestSpecial: boolean;
  /** expand_owner_alias. */
  expandOwnerAlias: boolean;
  /** reset_owner_alias. */
  resetOwnerAlias: boolean;
  /** allow_mail_to_commands. */
  allowCommands: ReadonlySet<ExpansionClass>;
  /** allow_mail_to_files. */
  allowFiles: ReadonlySet<ExpansionClass>;
  /** Domain appended to unqualified addresses ($myorigin), "" for none (append_at_myorigin = no). */
  origin: string;
  /** double_bounce_sender (never split at the delimiter). */
  doubleBounceSender: string;
  /** True when an address resolves to this local delivery service. */
  isLocal: (address: string) => boolean | Promise<boolean>;
  /** Lowercased Delivered-To addresses of the message (forms as local.ts reads them). */
  isDeliveredTo: (address: string) => boolean;
  /** Delivers to a mailbox; the outcome, or "unknown" when the user has no account. */
  deliverMailbox: (m: MailboxDelivery) => Promise<Omit<Outcome, "address" | "orcpt"> | "unknown">;
  /** Delivers to a command (absent: such destinations are deferred as not supported). */
  deliverCommand?: (
    c: SpecialDelivery & { command: string },
  ) => Promise<Omit<Outcome, "address" | "orcpt">>;
  /**
   * The user's .forward file (null: none to use), or the outcome that
   * stops it (absent: .forward files are not read).
   */
  forwardFile?: (
    address: string,
    user: string,
  ) => Promise<
    | { path: string; content: string; account: string; home: string }
    | null
    | Omit<Outcome, "address" | "orcpt">
  >;
  /** Reads an :include: file with `account`'s rights (absent: deferred as not supported). */
  includeFile?: (
    path: string,
    account: string | null,
  ) => Promise<{ content: string; account: string | null } | Omit<Outcome, "address" | "orcpt">>;
  /** Appends to a file (absent: deferred as not supported). */
  deliverFile?: (
    f: SpecialDelivery & { path: string },
  ) => Promise<Omit<Outcome, "address" | "orcpt">>;
  /**
   * luser_relay expanded for an unknown recipient (address, user), or
   * undefined / "" when unset.
   */
  luserRelay?: (address: string, user: string) => string | undefined;
  /** Warnings for the log. */
  warn: (message: string) => void;
  /**
   * Address verification (DeliveryRequest.verify): the hooks above only
   * say what they would do, and an address to send on as new mail is
   * reported as "forwards to ADDRESS" instead of being returned as a
   * {@link Forward}. @default false
   */
  verify?: boolean;
}

/** A top-level recipient of the request. */
export interface TopRecipient {
  address: string;
  orcpt?: string;
  notify?: string[];
}

/** Delivery attributes, passed by value down the recursion as Postfix's LOCAL_STATE. */
interface State {
  level: number;
  address: string;
  sender: string;
  /** The owner- address that replaced the sender, or null. */
  owner: string | null;
  /** The alias being expanded (the self-reference rule). */
  expFrom: string | null;
  /** Where the current address came from, for command and file policy. */
  expType: ExpansionClass | null;
  delivered: string;
  /** An address extension to add to the addresses of an expansion ("+ext"), or "". */
  unmatched: string;
  /**
   * The original recipient (Postfix's orig_addr): the queue file's original
   * recipient or the top-level address; none after an owner- alias.
   */
  orcpt?: string;
  notify?: string[];
  /**
   * Whose rights commands and files run with: the account name (a
   * .forward's user), or null for default_privs (aliases, as Postfix
   * with a root-owned alias database).
   */
  account: string | null;
  /**
   * Set by a .forward (its user) or an :include: file (the recipient),
   * Postfix's owner attribute without a new sender: local addresses are
   * sent on as new mail rather than delivered here.
   */
  forwarder: string | null;
  /** The home directory for `~/file` entries (a .forward's user), or null. */
  home: string | null;
}

/** Per top-level recipient: the duplicate filter and what was found. */
interface Run {
  env: AliasEnv;
  seen: Set<string>;
  out: Expansion;
}

/**
 * Expands one recipient of the request: the outcome of every destination
 * and the addresses to forward. Never throws for table errors (they are
 * deferrals); throws only for programming errors.
 */
export async function expandRecipient(
  env: AliasEnv,
  rcpt: TopRecipient,
  sender: string,
): Promise<Expansion> {
  const run: Run = {
    env,
    seen: new Set(),
    out: { outcomes: [], forwards: [] },
  };
  await deliverRecipient(run, {
    // The top-level recipient is at level 0: with this count a mutual alias
    // loop ends where real Postfix 3.7 ends it ("alias database loop for"
    // the same name; tests/interop/aliases_oracle_test.ts).
    level: -1,
    address: rcpt.address,
    sender,
    owner: null,
    expFrom: null,
    expType: null,
    delivered: rcpt.address,
    unmatched: "",
    orcpt: rcpt.orcpt ?? rcpt.address,
    notify: rcpt.notify,
    account: null,
    forwarder: null,
    home: null,
  });
  return run.out;
}

function result(
  run: Run,
  st: State,
  status: Outcome["status"],
  dsn: string,
  reason: string,
  passed?: RecipientStatus,
): void {
  run.out.outcomes.push({
    address: st.address,
    orcpt: st.orcpt,
    status,
    dsn,
    reason,
    ...(passed ? { passed } : {}),
  });
}

/** recipient.c deliver_recipient(): limits, duplicates, loops, then the switch. */
async function deliverRecipient(run: Run, st: State): Promise<void> {
  st = { ...st, level: st.level + 1 };
  if (st.level > MAX_LEVEL) {
    run.env.warn(`recipient nesting limit exceeded for ${st.address}`);
    return result(run, st, "bounced", "5.4.6", "recipient nesting limit exceeded");
  }
  const key = `recipient ${st.level} ${st.address.toLowerCase()}`;
  if (run.seen.has(key)) return;
  run.seen.add(key);
  if (run.env.isDeliveredTo(st.address)) {
    return result(
      run,
      st,
      "bounced",
      "5.4.6",
      `mail forwarding loop for ${quoteAddress(st.address)}`,
    );
  }
  await deliverSwitch(run, st);
}

/** recipient.c deliver_switch(): aliases first, then forwarding or the mailbox. */
async function deliverSwitch(run: Run, st: State): Promise<void> {
  const env = run.env;
  st = { ...st, level: st.level + 1 };
  let local = splitAddress(st.address).local.toLowerCase();
  let { user, extension } = splitExtension(local, env.delimiters, {
    doubleBounceSender: env.doubleBounceSender,
  });
  if (extension.includes("/")) {
    env.warn(`address with illegal extension: ${local}`);
    local = user;
    extension = "";
  }
  if (await deliverAlias(run, { ...st, unmatched: "" }, local)) return;
  if (extension !== "") {
    const unmatched = env.propagateToAliases ? extension : "";
    if (await deliverAlias(run, { ...st, unmatched }, user)) return;
  }
  // Mail for a list with an owner- alias is sent on as new mail, so that
  // each member has a queue file record of its own (and owner- gets the bounces).
  if (st.owner !== null && st.owner.toLowerCase() !== user) return deliverIndirect(run, st);
  if (st.forwarder !== null && st.forwarder.toLowerCase() !== user) return deliverIndirect(run, st);
  if (await deliverDotForward(run, st, local, user)) return;
  await deliverMailbox(run, st, local, user);
}

/**
 * dot_forward.c deliver_dotforward(): the user's .forward, when there is
 * one that names anything. True when it took the recipient.
 */
async function deliverDotForward(
  run: Run,
  st: State,
  local: string,
  user: string,
): Promise<boolean> {
  const env = run.env;
  if (!env.forwardFile) return false;
  const fw = await env.forwardFile(st.address, user);
  if (fw === null) return false;
  if ("status" in fw) {
    result(run, st, fw.status, fw.dsn, fw.reason);
    return true;
  }
  // A user who names herself in her own .forward gets her mailbox.
  if (run.seen.has(`forward ${fw.path}`)) return run.seen.has(`forward-done ${fw.path}`);
  run.seen.add(`forward ${fw.path}`);
  const items = fileDestinations(fw.content, parseAliasValue);
  if (items.length === 0) return false;
  const next: State = {
    ...st,
    level: st.level + 1,
    expType: "forward",
    expFrom: local,
    forwarder: user,
    account: fw.account,
    home: fw.home,
    unmatched: "",
    notify: withoutSuccess(st.notify),
  };
  for (const item of items) await deliverToken(run, next, item);
  run.seen.add(`forward-done ${fw.path}`);
  return true;
}

/** include.c deliver_include(): the destinations of an :include: file. */
async function deliverInclude(run: Run, st: State, path: string): Promise<void> {
  const env = run.env;
  st = { ...st, level: st.level + 1 };
  if (st.level > MAX_LEVEL) {
    env.warn(`:include: nesting limit exceeded for ${path}`);
    return result(run, st, "bounced", "5.4.6", ":include: nesting limit exceeded");
  }
  const key = `include ${st.account ?? ""} ${path}`;
  if (run.seen.has(key)) return;
  run.seen.add(key);
  const inc = await env.includeFile!(path, st.account);
  if ("status" in inc) return result(run, st, inc.status, inc.dsn, inc.reason);
  const next: State = {
    ...st,
    expType: "include",
    expFrom: splitAddress(st.address).local.toLowerCase(),
    account: inc.account,
    forwarder: st.owner === null && st.forwarder === null ? st.delivered : st.forwarder,
    unmatched: "",
  };
  for (const item of fileDestinations(inc.content, parseAliasValue)) {
    await deliverToken(run, next, item);
  }
}

/** mailbox.c and unknown.c: the user's mailbox, or "unknown user". */
async function deliverMailbox(run: Run, st: State, local: string, user: string): Promise<void> {
  const env = run.env;
  if (run.seen.has(`mailbox ${local}`)) return;
  run.seen.add(`mailbox ${local}`);
  if (env.localRecipients) {
    let known: boolean;
    try {
      known = await knownUser(env, st.address, user);
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
      env.warn(e.message);
      return result(run, st, "deferred", "4.3.0", "table lookup failure");
    }
    if (!known) return await deliverUnknown(run, st, local, user);
  }
  const r = await env.deliverMailbox({
    user,
    address: st.address,
    sender: st.sender,
    delivered: st.delivered,
    orcpt: st.orcpt,
  });
  if (r === "unknown") return await deliverUnknown(run, st, local, user);
  result(run, st, r.status, r.dsn, r.reason, r.passed);
}

/**
 * unknown.c deliver_unknown(): luser_relay when set, else postmaster and
 * mailer-daemon are discarded with a warning and anyone else bounces.
 */
async function deliverUnknown(run: Run, st: State, local: string, user: string): Promise<void> {
  const env = run.env;
  if (run.seen.has(`unknown ${local}`)) return;
  run.seen.add(`unknown ${local}`);
  const relay = env.luserRelay?.(st.address, user);
  if (relay !== undefined && relay !== "") {
    return await deliverResolve(run, { ...st, unmatched: "" }, relay);
  }
  if (user === "postmaster" || user === "mailer-daemon") {
    env.warn(`required alias not found: ${user}`);
    return result(run, st, "sent", "2.0.0", "discarded");
  }
  return result(run, st, "bounced", "5.1.1", `unknown user: "${user}"`);
}

/** Whether local_recipient_maps lists the user, searched as smtpd does (address, then local part). */
async function knownUser(env: AliasEnv, address: string, user: string): Promise<boolean> {
  const maps = env.localRecipients!;
  const { local, domain } = splitAddress(address.toLowerCase());
  const keys = [address.toLowerCase()];
  if (local !== user) keys.push(`${user}@${domain}`);
  keys.push(local);
  if (local !== user) keys.push(user);
  for (const [i, key] of keys.entries()) {
    if (await maps.find(key, { partial: i > 0 }) !== undefined) return true;
  }
  return false;
}

/**
 * alias.c deliver_alias(): looks `name` up and delivers to its expansion.
 * Returns false when `name` is not an alias (or names itself).
 */
async function deliverAlias(run: Run, st: State, name: string): Promise<boolean> {
  const env = run.env;
  st = { ...st, level: st.level + 1 };
  if (st.expFrom !== null && st.expFrom === name) return false;
  if (st.level > MAX_LEVEL) {
    env.warn(`alias database loop for ${name}`);
    result(run, st, "bounced", "5.4.6", `alias database loop for ${name}`);
    return true;
  }
  st.expFrom = name;
  let value: string | undefined;
  let ownerValue: string | undefined;
  const owner = `owner-${name}`;
  try {
    value = await env.aliases.find(name);
    if (value !== undefined && env.ownerRequestSpecial) {
      ownerValue = await env.aliases.find(owner);
    }
  } catch (e) {
    if (!(e instanceof DictError)) throw e;
    env.warn(e.message);
    result(run, st, "deferred", "4.3.0", "alias database unavailable");
    return true;
  }
  if (value === undefined) return false;

  st.expType = "alias";
  if (ownerValue !== undefined) {
    const o = qualify(env.expandOwnerAlias ? ownerValue.trim() : owner, env.origin);
    st.owner = o;
    st.sender = o;
  } else if (env.resetOwnerAlias) {
    // Default (no): a nested alias without owner- keeps the outer list's owner.
    st.owner = null;
  }
  // DSN (RFC 3461 section 6.2.7): forwarded copies do not ask for SUCCESS
  // again; a list (owner- alias) starts afresh without ORCPT.
  st.notify = withoutSuccess(st.notify);
  if (ownerValue !== undefined) st.orcpt = undefined;

  const items = parseAliasValue(value);
  if (items.length === 0) {
    env.warn(`no recipient in alias lookup result for ${name}`);
    result(run, st, "deferred", "4.3.0", "alias database unavailable");
    return true;
  }
  for (const item of items) await deliverToken(run, st, item);
  return true;
}

/** token.c deliver_token(): one destination of an alias. */
async function deliverToken(run: Run, st: State, item: string): Promise<void> {
  const env = run.env;
  const d = classifyDestination(item);
  const allowed = (set: ReadonlySet<ExpansionClass>) => st.expType !== null && set.has(st.expType);
  const notYet = (what: string) =>
    result(run, st, "deferred", "4.3.0", `alias expansion: ${what} is not supported yet`);
  const target = {
    address: st.address,
    sender: st.sender,
    delivered: st.delivered,
    orcpt: st.orcpt,
    account: st.account,
  };
  switch (d.kind) {
    case "command": {
      if (!allowed(env.allowCommands)) {
        return result(run, st, "bounced", "5.7.1", "mail to command is restricted");
      }
      if (!env.deliverCommand) return notYet(`delivery to commands ("|${d.command}")`);
      // command.c: once per command and rights.
      const key = `command ${st.account ?? ""} ${d.command}`;
      if (run.seen.has(key)) return;
      run.seen.add(key);
      const r = await env.deliverCommand({ ...target, command: d.command });
      return result(run, st, r.status, r.dsn, r.reason);
    }
    case "file": {
      if (!allowed(env.allowFiles)) {
        return result(run, st, "bounced", "5.7.1", "mail to file is restricted");
      }
      if (!env.deliverFile) return notYet(`delivery to files (${d.path})`);
      const key = `file ${st.account ?? ""} ${d.path}`;
      if (run.seen.has(key)) return;
      run.seen.add(key);
      const r = await env.deliverFile({ ...target, path: d.path });
      return result(run, st, r.status, r.dsn, r.reason);
    }
    case "home":
      if (st.home !== null && d.path.startsWith("~/")) {
        // A .forward's ~/file: in the user's home, as a file destination.
        return await deliverToken(run, st, `${st.home.replace(/\/+$/, "")}/${d.path.slice(2)}`);
      }
      // An alias has no home directory (Postfix: aliases owned by root run as default_privs).
      env.warn(
        d.path.startsWith("~/")
          ? `unknown home directory for: ${d.path}`
          : `bad home directory syntax for: ${d.path}`,
      );
      return result(run, st, "bounced", "5.3.5", "mail system configuration error");
    case "include":
      if (!env.includeFile) return notYet(`:include: files (${d.path})`);
      return await deliverInclude(run, st, d.path);
    case "address":
      return await deliverResolve(run, st, d.address);
  }
}

/** resolve.c deliver_resolve_tree(): canonical form, then here or elsewhere. */
async function deliverResolve(run: Run, st: State, item: string): Promise<void> {
  const env = run.env;
  st = { ...st, level: st.level + 1 };
  let address = qualify(item.endsWith("@") ? item.slice(0, -1) : item, env.origin);
  if (st.unmatched !== "") {
    const at = address.lastIndexOf("@");
    address = at < 0
      ? address + st.unmatched
      : address.slice(0, at) + st.unmatched + address.slice(at);
  }
  try {
    formatPath(address);
  } catch {
    return result(
      run,
      { ...st, address },
      "bounced",
      "5.1.3",
      `bad recipient address syntax: ${address}`,
    );
  }
  const next: State = { ...st, address, unmatched: "" };
  let local: boolean;
  try {
    local = await env.isLocal(address);
  } catch (e) {
    if (!(e instanceof DictError)) throw e;
    env.warn(e.message);
    return result(run, next, "deferred", "4.3.0", "address resolver failure");
  }
  if (local) return await deliverRecipient(run, next);
  deliverIndirect(run, next);
}

/**
 * indirect.c deliver_indirect(): forward once per recipient through
 * cleanup; in address verification, only say so (Postfix's text, the
 * address in its internal form).
 */
function deliverIndirect(run: Run, st: State): void {
  const key = `indirect ${st.address.toLowerCase()}`;
  if (run.seen.has(key)) return;
  run.seen.add(key);
  if (run.env.verify) return result(run, st, "sent", "2.0.0", `forwards to ${st.address}`);
  run.out.forwards.push({
    address: st.address,
    sender: st.sender,
    delivered: st.delivered,
    orcpt: st.orcpt,
    notify: st.notify,
    ownerSender: st.owner !== null,
  });
}

/** NOTIFY without SUCCESS; NEVER when SUCCESS was all (Postfix's alias.c). */
function withoutSuccess(notify: string[] | undefined): string[] | undefined {
  if (notify === undefined) return undefined;
  const rest = notify.filter((n) => n.toUpperCase() !== "SUCCESS");
  return rest.length === 0 ? ["NEVER"] : rest;
}

/** `name` to `name@origin` when it has no domain (canonical rewriting). */
function qualify(address: string, origin: string): string {
  return origin === "" || address.includes("@") ? address : `${address}@${origin}`;
}
