/**
 * NAME
 *   newaliases - rebuild the alias databases, as Postfix's newaliases
 *
 * SYNOPSIS
 *   newaliases [-c config_dir]
 *
 * DESCRIPTION
 *   Runs postalias on every table named by alias_database (the sendmail
 *   compatible `sendmail -bi`). A file named without a type is of
 *   default_database_type. Exit 0 when every table was built.
 *
 * PARAMETERS
 *   alias_database (hash:/etc/aliases), default_database_type (hash).
 *
 * @module
 */
import { configDirFrom, ConfigError, loadConfig } from "../lib/config/mod.ts";
import { getopt, GetoptError } from "./_cli.ts";
import { postalias } from "./postalias.ts";
import { type PostmapIo, runMain } from "./postmap.ts";
import { printHelpIfAsked } from "./_help.ts";

/** Runs newaliases with `args`; returns the exit status. */
export async function newaliases(args: string[], io: PostmapIo): Promise<number> {
  let c: string | undefined;
  try {
    const { opts, operands } = getopt(args, "c:");
    if (operands.length > 0) throw new GetoptError(`unexpected argument "${operands[0]}"`);
    c = opts.find((o) => o.flag === "c")?.value;
    const config = await loadConfig(configDirFrom({ c }, io.env ?? {}));
    const tables = config.list("alias_database");
    if (tables.length === 0) return 0;
    return await postalias([...(c ? ["-c", c] : []), ...tables], io);
  } catch (e) {
    if (e instanceof GetoptError) {
      io.err(`newaliases: fatal: ${e.message}; usage: newaliases [-c config_dir]`);
      return 1;
    }
    if (e instanceof ConfigError) {
      io.err(`newaliases: fatal: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  if (printHelpIfAsked("newaliases", Deno.args)) Deno.exit(0);
  await runMain("newaliases", (io) => newaliases(Deno.args, io));
}
