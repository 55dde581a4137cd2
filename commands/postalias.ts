/**
 * NAME
 *   postalias - build and query alias tables, as Postfix's postalias(1)
 *
 * SYNOPSIS
 *   postalias [-Nfinoprsvw] [-c config_dir] [-d key] [-q key] [type:]file...
 *
 * DESCRIPTION
 *   postmap (commands/postmap.ts) for aliases(5) sources: "name: value"
 *   lines, the name in unquoted form, the value re-written as RFC 822
 *   tokens ("a,b" is stored as "a, b"); the "@" entry (sendmail's "the
 *   table is complete") and the NIS YP_LAST_MODIFIED/YP_MASTER_NAME
 *   entries are added. `-q -` prints "key:<TAB>value". Options and exit
 *   codes are postmap's, without -b, -B, -F, -h, -m, -S, -u, -U.
 *
 * PARAMETERS
 *   default_database_type (hash), myhostname.
 *
 * @module
 */
import { postmap, type PostmapIo, runMain } from "./postmap.ts";
import { printHelpIfAsked } from "./_help.ts";

/** Runs postalias with `args`; returns the exit status. */
export function postalias(args: string[], io: PostmapIo): Promise<number> {
  return postmap(args, io, "postalias");
}

if (import.meta.main) {
  if (printHelpIfAsked("postalias", Deno.args)) Deno.exit(0);
  await runMain("postalias", (io) => postalias(Deno.args, io));
}
