/**
 * The bounce templates a configuration uses: the built-in ones, or those
 * of the file bounce_template_file names (read with the configuration by
 * loadConfig, since daemons cannot read the configuration directory),
 * parsed and checked by lib/dsn/template.ts. Shared by validateConfig
 * (a bad template stops the start), the bounce daemon and `postconf -b/-t`.
 *
 * @module
 */
import {
  type BounceTemplate,
  builtinTemplates,
  parseTemplateFile,
  TemplateError,
  type TemplateKind,
  type TemplateTimes,
} from "../dsn/template.ts";
import { type Config, configPath } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { expand } from "./expand.ts";
import { POSTFIX_DEFAULTS } from "./postfix_names.ts";

/**
 * `$name` in template text: a parameter of the table or set in main.cf,
 * else a Postfix parameter at its default; undefined for other names.
 */
export function templateParam(config: Config): (name: string) => string | undefined {
  return (name) => {
    if (config.raw(name) !== undefined) return config.str(name);
    const def = POSTFIX_DEFAULTS.get(name);
    return def === undefined ? undefined : expand(def, config.raw, { stack: [name] });
  };
}

/** The times a template can show in other units. */
export function templateTimes(config: Config): TemplateTimes {
  return {
    delay_warning_time: config.time("delay_warning_time"),
    maximal_queue_lifetime: config.time("maximal_queue_lifetime"),
  };
}

/**
 * The templates in use, from `file` (an absolute path; postconf -b/-t
 * FILE), else bounce_template_file, else the built-in ones.
 * @throws {ConfigError} when the file cannot be read or a template is bad.
 */
export function bounceTemplates(
  config: Config,
  file?: { path: string; text: string },
): Record<TemplateKind, BounceTemplate> {
  let path = file?.path;
  let text = file?.text;
  if (path === undefined) {
    path = configPath(config, "bounce_template_file");
    if (!path) return builtinTemplates();
    text = config.fileText(path);
  }
  const param = templateParam(config);
  try {
    return parseTemplateFile(text!, path, (name) => {
      try {
        return param(name) !== undefined;
      } catch {
        return true; // a parameter whose own value is bad: reported on its own
      }
    });
  } catch (e) {
    if (e instanceof TemplateError) {
      throw new ConfigError(`bounce_template_file: ${e.problems.join("; ")}`);
    }
    throw e;
  }
}
