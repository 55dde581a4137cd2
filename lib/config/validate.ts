/**
 * Checks a whole configuration before anything runs, so that a bad value
 * ("message_size_limit = 10m", "smtpd_timeout = 0") or a setting Postwarden
 * cannot honour ("smtpd_tls_security_level = encrypt", Postfix's default
 * local_recipient_maps) stops master at start, or a reload, and `postwarden
 * check`, with a message naming it, instead of failing inside a daemon at
 * the first message that needs it, or never.
 *
 * Every parameter of the table is read with its typed accessor, which also
 * applies Postfix's range; support.ts adds what Postwarden does not
 * implement. Fatal problems are validateConfig's; the others reach
 * `Config.warnings`.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { PARAMS } from "./params.ts";
import { type ConfigProblem, supportProblems } from "./support.ts";
import { bounceTemplates } from "./bounce_template.ts";

export type { ConfigProblem } from "./support.ts";

/** Type and range errors: one per parameter whose accessor refuses its value. */
function valueProblems(config: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
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
      out.push({ names: [spec.name], message: e.message, fatal: true });
    }
  }
  return out;
}

/** A bounce_template_file that cannot be read or used stops the start (bounce_template.ts). */
function templateProblems(config: Config): ConfigProblem[] {
  try {
    bounceTemplates(config);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return [{ names: ["bounce_template_file"], message: e.message, fatal: true }];
  }
}

/**
 * Every problem found, fatal or not, with the parameters it is about (so a
 * daemon can pick out those its master.cf `-o` overrides set).
 */
export function configProblems(config: Config): ConfigProblem[] {
  return [...valueProblems(config), ...supportProblems(config), ...templateProblems(config)];
}

/** Problems that stop the start, one message each; empty when all is well. */
export function validateConfig(config: Config): string[] {
  return configProblems(config).filter((p) => p.fatal).map((p) => p.message);
}

/**
 * The problems that a service's master.cf `-o` overrides bring: those about
 * an overridden parameter (master has validated main.cf alone). A daemon
 * runs this at start and refuses to serve on a fatal one.
 */
export function overrideProblems(
  config: Config,
  overrides: Readonly<Record<string, string>>,
): { fatal: string[]; warnings: string[] } {
  const overridden = new Set(Object.keys(overrides));
  const out = { fatal: [] as string[], warnings: [] as string[] };
  if (overridden.size === 0) return out;
  for (const p of configProblems(config)) {
    if (p.names.some((n) => overridden.has(n))) {
      (p.fatal ? out.fatal : out.warnings).push(p.message);
    }
  }
  return out;
}
