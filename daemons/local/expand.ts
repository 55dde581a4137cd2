/**
 * Postfix local(8)'s attribute expansion (src/local/local_expand.c) for
 * forward_path, luser_relay, mailbox_command and
 * command_execution_directory: `$user`, `$home`, `$shell`, `$recipient`,
 * `$local`, `$domain`, `$extension`, `$recipient_delimiter`, with the
 * `${name}`, `${name?value}` and `${name:value}` forms. Any other name
 * expands to nothing, as in Postfix (these parameters are "raw": main.cf
 * names are not filled in).
 *
 * Values are never expanded again, so a `$` in an address stays a `$`.
 * With an expansion filter (forward_expansion_filter,
 * command_expansion_filter, execution_directory_expansion_filter) every
 * character of an attribute value that the filter does not list becomes
 * "_", as Postfix's local_expand() does; the template's own characters are
 * kept.
 *
 * Pure.
 *
 * @module
 */
import { expand } from "../../lib/config/expand.ts";
import { splitExtension } from "../../lib/address/mod.ts";

/** The attributes a template may name. */
export interface LocalAttributes {
  /** The recipient user (local part folded, without its extension). */
  user: string;
  /** The user's home directory ("" when unknown). */
  home: string;
  /** The user's login shell ("" when unknown). */
  shell: string;
  /** The full recipient address. */
  recipient: string;
  /** The whole local part. */
  local: string;
  /** The recipient's domain. */
  domain: string;
  /** The address extension without its delimiter ("" when none). */
  extension: string;
  /** The delimiter that separated the extension ("" when none). */
  recipient_delimiter: string;
}

/** The names of {@link LocalAttributes}. */
const NAMES = new Set([
  "user",
  "home",
  "shell",
  "recipient",
  "local",
  "domain",
  "extension",
  "recipient_delimiter",
]);

/**
 * Expands `template` with `attrs`.
 *
 * @param filter characters allowed in attribute values; others become "_". @default none
 * @throws {ConfigError} (lib/config) for bad syntax in the template.
 */
export function localExpand(template: string, attrs: LocalAttributes, filter?: string): string {
  const clean = (v: string) =>
    filter === undefined ? v : [...v].map((c) => (filter.includes(c) ? c : "_")).join("");
  // The expander expands values again: hand it placeholders, put the values in after.
  const values: string[] = [];
  const out = expand(template.replace(/[\uE000\uE001]/g, ""), (name) => {
    if (!NAMES.has(name)) return undefined;
    const v = attrs[name as keyof LocalAttributes];
    // An empty value is "undefined" for ${name?x} / ${name:x}.
    if (v === "") return undefined;
    values.push(clean(v));
    return `\uE000${values.length - 1}\uE001`;
  });
  return out.replace(/\uE000(\d+)\uE001/g, (_, i) => values[Number(i)]);
}

/** The attributes of a recipient, from its address and (when known) its passwd entry. */
export function recipientAttributes(
  recipient: string,
  delimiters: string,
  account: { name?: string; home?: string; shell?: string } | null,
  user: string,
): LocalAttributes {
  const at = recipient.lastIndexOf("@");
  const local = at < 0 ? recipient : recipient.slice(0, at);
  const domain = at < 0 ? "" : recipient.slice(at + 1);
  const ext = splitExtension(local, delimiters).extension;
  const delim = ext.slice(0, 1);
  const extension = ext.slice(1);
  return {
    user,
    home: account?.home ?? "",
    shell: account?.shell ?? "",
    recipient,
    local,
    domain,
    extension,
    recipient_delimiter: delim,
  };
}
