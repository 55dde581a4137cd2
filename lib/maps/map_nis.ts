/**
 * `nis:map`, as far as Postfix's dict_nis goes on a host without a NIS
 * domain: Postfix's default alias_maps is `hash:/etc/aliases,
 * nis:mail.aliases`, and on such a host Postfix warns once
 * ("dict_nis_init: NIS domain name not set - NIS lookups disabled") and
 * finds nothing. Postwarden does the same. On a host that has a NIS domain
 * Postfix would ask ypserv, which Postwarden cannot: the table is then a
 * configuration error (every lookup fails, "try again"), never a table
 * that silently finds nothing.
 *
 * @module
 */
import { type DictBackend, DictError } from "./dict.ts";

/** The kernel's NIS domain name, or "" when none is set. */
async function nisDomain(path: string): Promise<string> {
  try {
    const d = (await Deno.readTextFile(path)).trim();
    return d === "(none)" ? "" : d;
  } catch {
    return "";
  }
}

/** The nis: backend; `domainFile` is where the NIS domain name is read (tests). */
export function nisBackend(domainFile = "/proc/sys/kernel/domainname"): DictBackend {
  return {
    open: async (name, opts) => {
      const domain = await nisDomain(domainFile);
      if (domain === "") {
        opts.warn("dict_nis_init: NIS domain name not set - NIS lookups disabled");
        return {
          type: "nis",
          name,
          pattern: false,
          lookup: () => Promise.resolve(undefined),
          close: () => Promise.resolve(),
        };
      }
      throw new DictError(
        `nis:${name}: NIS lookups are not supported (NIS domain "${domain}" is set)`,
        "config",
      );
    },
    grants: () => Promise.resolve({ read: [domainFile] }),
  };
}
