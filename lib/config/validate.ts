/**
 * Checks every parameter of the table against its type, so that a bad
 * value ("message_size_limit = 10m") stops master at start, or a reload,
 * with a message naming it, instead of failing inside a daemon at the
 * first message that needs it.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { PARAMS } from "./params.ts";

/** Problems found, one message per bad parameter; empty when all is well. */
export function validateConfig(config: Config): string[] {
  const errors: string[] = [];
  for (const spec of PARAMS.values()) {
    try {
      switch (spec.type) {
        case "int":
          config.int(spec.name);
          break;
        case "time":
          config.time(spec.name);
          break;
        case "size":
          config.size(spec.name);
          break;
        case "bool":
          config.bool(spec.name);
          break;
        case "list":
          config.list(spec.name);
          break;
        default:
          config.str(spec.name);
      }
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e.message);
    }
  }
  return errors;
}
