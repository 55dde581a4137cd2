/**
 * Virtual alias expansion of one envelope recipient, as Postfix's
 * cleanup_map1n.c: the address is looked up in virtual_alias_maps (search
 * order of mail_addr_find), each address of the result is looked up again,
 * recursively, until no address has an entry. An address that maps to
 * itself (alone or among others) is kept and not expanded again, so
 * `a@x -> a@x, b@y` delivers to both.
 *
 * Limits, with Postfix's wording and outcome (the whole message is refused
 * with "4.6.0 Alias expansion error", try again later):
 * - virtual_alias_expansion_limit: more addresses than this from one
 *   recipient ("unreasonable virtual_alias_maps map expansion size");
 * - virtual_alias_recursion_limit: nesting deeper than this
 *   ("unreasonable virtual_alias_maps map nesting");
 * - virtual_alias_address_length_limit: a result address longer than this
 *   ("unreasonable virtual_alias_maps result").
 * A table that cannot answer is a DictError, which the caller turns into
 * 451 4.3.0 (Postfix's CLEANUP_STAT_WRITE).
 *
 * Duplicates in the result are not removed here: cleanup removes duplicate
 * recipients once, after every recipient is expanded.
 *
 * @module
 */
import type { Maps } from "../../lib/maps/mod.ts";
import { addrMap, type MapOneOptions } from "./rewrite.ts";

/** The expansion limits (main.cf virtual_alias_*_limit). */
export interface ExpansionLimits {
  /** virtual_alias_expansion_limit. @default 1000 */
  expansion: number;
  /** virtual_alias_recursion_limit. @default 1000 */
  recursion: number;
  /** virtual_alias_address_length_limit. @default 1000 */
  addressLength: number;
}

/** An expansion over a limit: the message is deferred with {@link ExpansionError.reason}. */
export class ExpansionError extends Error {
  override readonly name = "ExpansionError";
  /** The reply, as Postfix: enhanced status and text. */
  readonly dsn = "4.6.0";
  readonly reason = "Alias expansion error";
}

/**
 * Expands one recipient (internal form) through `maps`. Returns the
 * addresses, the recipient itself when it has no entry.
 *
 * @throws {ExpansionError} over a limit (the warning names the limit).
 * @throws {DictError} when a table cannot answer.
 */
export async function expandVirtual(
  maps: Maps,
  address: string,
  limits: ExpansionLimits,
  opts: MapOneOptions = {},
): Promise<string[]> {
  const out = [address];
  if (maps.empty) return out;
  /** Addresses that expanded into themselves: not expanded again (been_here, case-folded). */
  const selfRef = new Set<string>();
  const fail = (what: string) => {
    opts.warn?.(`${what} -- message not accepted, try again later`);
    return new ExpansionError(what);
  };
  for (let i = 0; i < out.length; i++) {
    if (out.length > limits.expansion) {
      throw fail(`unreasonable ${maps.title} map expansion size for ${address}`);
    }
    for (let depth = 0;; depth++) {
      if (selfRef.has(out[i].toLowerCase())) break;
      if (depth >= limits.recursion) {
        throw fail(`unreasonable ${maps.title} map nesting for ${address}`);
      }
      const lhs = out[i];
      const found = await addrMap(maps, lhs, opts);
      if (found === undefined) break;
      if (found.length === 0) {
        throw fail(`${maps.title} lookup of ${lhs} returns non-address result`);
      }
      for (const [k, a] of found.entries()) {
        if (a.length > limits.addressLength) {
          throw fail(`unreasonable ${maps.title} result ${a.slice(0, 300)}...`);
        }
        if (k === 0) out[i] = a;
        else out.push(a);
        if (a.toLowerCase() === lhs.toLowerCase()) selfRef.add(lhs.toLowerCase());
      }
    }
  }
  return out;
}
