/**
 * smtpd_sasl_mechanism_filter: which of the mechanisms the SASL backend
 * offers smtpd shows in its EHLO reply, as Postfix 3.7's
 * sasl_mech_filter() with a string list decides it. The list is read in
 * order and the first item that matches a mechanism decides: a name keeps
 * it, "!name" drops it; a mechanism no item matches is dropped. Names
 * compare without regard to case, and the mechanism keeps the backend's
 * spelling. "static:anything" is a table that matches every mechanism, so
 * Postfix's default "!external, static:rest" drops EXTERNAL and keeps the
 * rest. An empty value means no filter.
 *
 * Not supported (the start stops, naming the item): other lookup tables
 * and "/file/name" patterns; give the names instead. Postfix would read
 * them; ignoring them could show a mechanism the admin meant to hide.
 *
 * One difference from Postfix, on purpose: Postfix's filter only hides a
 * mechanism from EHLO, and "AUTH hidden-mechanism" still reaches the
 * backend; Postwarden refuses it as a mechanism not offered ("535 5.7.8
 * Error: authentication failed: Invalid authentication mechanism"), so
 * that a mechanism filtered out cannot be used at all.
 *
 * Pure: no I/O.
 *
 * @module
 */

/** One item of the filter. */
interface FilterItem {
  negate: boolean;
  /** A static: table: matches every mechanism. */
  any: boolean;
  /** The mechanism name, lower case (when not `any`). */
  name: string;
}

/** A parsed smtpd_sasl_mechanism_filter; null items: no filter. */
export interface MechFilter {
  items: FilterItem[] | null;
}

/**
 * Parses the filter's items (the parameter's list); an error text for an
 * item Postwarden cannot honour.
 */
export function parseMechFilter(items: readonly string[]): MechFilter | { error: string } {
  if (!items.length) return { items: null };
  const out: FilterItem[] = [];
  for (const raw of items) {
    const negate = raw.startsWith("!");
    const item = negate ? raw.slice(1) : raw;
    if (/^static:/i.test(item)) {
      out.push({ negate, any: true, name: "" });
    } else if (item.startsWith("/") || /^[a-z][a-z0-9_-]*:/i.test(item)) {
      return {
        error: `smtpd_sasl_mechanism_filter: "${raw}": lookup tables and /file/name patterns ` +
          "other than static: are not supported by Postwarden; list the mechanism names",
      };
    } else if (/^[A-Za-z0-9_-]{1,20}$/.test(item)) {
      out.push({ negate, any: false, name: item.toLowerCase() });
    } else {
      return { error: `smtpd_sasl_mechanism_filter: "${raw}": not a SASL mechanism name` };
    }
  }
  return { items: out };
}

/** Whether the filter keeps a mechanism (first matching item decides; none: dropped). */
export function keepsMechanism(filter: MechFilter, mechanism: string): boolean {
  if (filter.items === null) return true;
  const name = mechanism.toLowerCase();
  for (const item of filter.items) {
    if (item.any || item.name === name) return !item.negate;
  }
  return false;
}

/** The mechanisms the filter keeps, in the backend's order and spelling. */
export function applyMechFilter(filter: MechFilter, mechanisms: readonly string[]): string[] {
  return mechanisms.filter((m) => keepsMechanism(filter, m));
}
