/**
 * Command-line plumbing shared by the client programs: POSIX getopt(3)
 * (clustered flags "-nx", "-cDIR" or "-c DIR", "--" ends the options, the
 * first operand ends them too) and writing to standard output without
 * failing when the reader went away (`mailq | head`).
 */

/** An unknown option or a missing option argument, worded like getopt(3). */
export class GetoptError extends Error {
  override readonly name = "GetoptError";
}

/** One parsed option. */
export interface Opt {
  flag: string;
  /** The argument of an option declared with ":" in the spec. */
  value?: string;
}

/**
 * Parses `args` against a getopt spec such as "c:d:hv" (a letter followed by
 * ":" takes an argument). Returns the options in order and the operands.
 */
export function getopt(args: string[], spec: string): { opts: Opt[]; operands: string[] } {
  const takesArg = new Map<string, boolean>();
  for (let i = 0; i < spec.length; i++) {
    takesArg.set(spec[i], spec[i + 1] === ":");
    if (spec[i + 1] === ":") i++;
  }
  const opts: Opt[] = [];
  let k = 0;
  for (; k < args.length; k++) {
    const a = args[k];
    if (a === "--") {
      k++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    for (let j = 1; j < a.length; j++) {
      const flag = a[j];
      const arg = takesArg.get(flag);
      if (arg === undefined) throw new GetoptError(`invalid option -- '${flag}'`);
      if (!arg) {
        opts.push({ flag });
        continue;
      }
      const value = a.slice(j + 1) || args[++k];
      if (value === undefined) throw new GetoptError(`option requires an argument -- '${flag}'`);
      opts.push({ flag, value });
      break;
    }
  }
  return { opts, operands: args.slice(k) };
}

/** Writes everything to standard output; a closed pipe ends the output quietly. */
export async function writeStdout(bytes: Uint8Array): Promise<void> {
  try {
    while (bytes.length > 0) bytes = bytes.subarray(await Deno.stdout.write(bytes));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}
