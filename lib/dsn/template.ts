/**
 * Bounce templates (bounce(5)): the header fields and human-readable text
 * of delivery status notifications, built in or from the file named by
 * bounce_template_file, as Postfix 3.7 reads them.
 *
 * The file holds up to four templates, `failure_template`,
 * `delay_template`, `success_template` and `verify_template`, each as
 * `name = <<MARKER` followed by its lines up to a line that is exactly
 * MARKER. Outside a template, empty lines, white space and `#` lines are
 * ignored. A template starts with header lines (Charset, From, Subject,
 * Postmaster-Subject; names in any case, ASCII values, Postmaster-Subject
 * only for failure and delay), then blank lines, then its text, in which
 * `$name`, `${name}` and `$(name)` expand to main.cf parameter values and
 * `$$` is a dollar sign. `delay_warning_time_<unit>` and
 * `maximal_queue_lifetime_<unit>` (unit seconds, minutes, hours, days or
 * weeks) expand to those times in whole units. Expanded values have
 * control characters replaced by "?" (Postfix's MAC_EXP_FLAG_PRINTABLE).
 *
 * Where Postfix logs a warning and falls back to the built-in template (an
 * unknown template or header name, an empty or non-ASCII header value,
 * 8-bit text with charset us-ascii, no text), or dies when a notice is
 * being written (bad `$` syntax, an undefined name, an unknown time unit),
 * Postwarden reports every problem when the configuration is loaded and
 * refuses to start: an admin who wrote a template wants to know it is not
 * used, before the first bounce. Not supported: the UTF-8 presentation of
 * ACE labels in $myhostname/$mydomain under smtputf8_enable (the value is
 * shown as it is set).
 *
 * Pure: the caller reads the file (lib/config keeps its text with the
 * configuration, since daemons cannot read the configuration directory).
 *
 * @module
 */

/** The four template classes, in Postfix's order. */
export const TEMPLATE_KINDS = ["failure", "delay", "success", "verify"] as const;
export type TemplateKind = typeof TEMPLATE_KINDS[number];

/** One template, parsed. */
export interface BounceTemplate {
  kind: TemplateKind;
  /** Where it came from: the file's path, or "[built-in]". */
  origin: string;
  /** MIME charset of the text. */
  charset: string;
  /** From: header value, e.g. `Mail Delivery System <MAILER-DAEMON>`. */
  from: string;
  subject: string;
  /** Subject of postmaster copies (failure and delay only). */
  postmasterSubject?: string;
  /** Text lines, unexpanded. */
  text: string[];
}

/** A template file that cannot be used, with every problem found. */
export class TemplateError extends Error {
  override readonly name = "TemplateError";
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
  }
}

/** Postfix 3.7's built-in templates, in the file format (`postconf -t` prints them). */
export const BUILTIN_TEMPLATE_FILE = `failure_template = <<EOF
Charset: us-ascii
From: Mail Delivery System <MAILER-DAEMON>
Subject: Undelivered Mail Returned to Sender
Postmaster-Subject: Postmaster Copy: Undelivered Mail

This is the mail system at host $myhostname.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system
EOF

delay_template = <<EOF
Charset: us-ascii
From: Mail Delivery System <MAILER-DAEMON>
Subject: Delayed Mail (still being retried)
Postmaster-Subject: Postmaster Warning: Delayed Mail

This is the mail system at host $myhostname.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

Your message could not be delivered for more than $delay_warning_time_hours hour(s).
It will be retried until it is $maximal_queue_lifetime_days day(s) old.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system
EOF

success_template = <<EOF
Charset: us-ascii
From: Mail Delivery System <MAILER-DAEMON>
Subject: Successful Mail Delivery Report

This is the mail system at host $myhostname.

Your message was successfully delivered to the destination(s)
listed below. If the message was delivered to mailbox you will
receive no further notifications. Otherwise you may still receive
notifications of mail delivery errors from other systems.

                   The mail system
EOF

verify_template = <<EOF
Charset: us-ascii
From: Mail Delivery System <MAILER-DAEMON>
Subject: Mail Delivery Status Report

This is the mail system at host $myhostname.

Enclosed is the mail delivery report that you requested.

                   The mail system
EOF
`;

// deno-lint-ignore no-control-regex
const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/** One template's text as written between its markers. */
function parseTemplate(
  kind: TemplateKind,
  origin: string,
  where: string,
  body: string[],
  problems: string[],
  proto: BounceTemplate | undefined,
): BounceTemplate | null {
  // Header fields a template leaves out keep the built-in template's values.
  const t: BounceTemplate = {
    charset: "us-ascii",
    from: "",
    subject: "",
    ...proto,
    kind,
    origin,
    text: [],
  };
  const bad = (what: string) => {
    problems.push(`${where}: ${what} in ${kind} template`);
    return null;
  };
  let i = 0;
  for (; i < body.length; i++) {
    const m = /^([!-9;-~]+):(.*)$/.exec(body[i]);
    if (!m) break;
    const label = m[1];
    const value = m[2].trim();
    if (value === "") return bad(`empty "${label}" header value`);
    if (!isAscii(value) || value.includes("\0")) return bad(`non-ASCII "${label}" header value`);
    switch (label.toLowerCase()) {
      case "charset":
        t.charset = value;
        break;
      case "from":
        t.from = value;
        break;
      case "subject":
        t.subject = value;
        break;
      case "postmaster-subject":
        if (kind !== "failure" && kind !== "delay") {
          return bad(`inapplicable "${label}" header label`);
        }
        t.postmasterSubject = value;
        break;
      default:
        return bad(`unknown "${label}" header label`);
    }
  }
  while (i < body.length && body[i].trim() === "") i++;
  if (i === body.length) return bad("missing message text");
  t.text = body.slice(i);
  if (!t.text.every(isAscii) && t.charset.toLowerCase() === "us-ascii") {
    return bad("8-bit message text with charset us-ascii (specify a charset other than us-ascii)");
  }
  return t;
}

/**
 * Parses a template file. Templates it does not define are the built-in
 * ones. Checks the text's `$` references too, with `known` saying which
 * parameter names exist.
 * @throws {TemplateError} listing every problem.
 */
export function parseTemplateFile(
  text: string,
  origin: string,
  known: (name: string) => boolean = () => true,
): Record<TemplateKind, BounceTemplate> {
  const problems: string[] = [];
  const found = parseFile(text, origin, problems);
  const out = { ...builtinTemplates(), ...found };
  for (const t of Object.values(found)) {
    for (const line of t.text) {
      try {
        expandLine(line, (name) => (known(name) ? "" : undefined), ZERO_TIMES);
      } catch (e) {
        if (!(e instanceof TemplateError)) throw e;
        problems.push(`${origin}: ${e.problems[0]} in ${t.kind} template: ${line}`);
      }
    }
  }
  if (problems.length) throw new TemplateError(problems);
  return out;
}

function parseFile(
  text: string,
  origin: string,
  problems: string[],
): Partial<Record<TemplateKind, BounceTemplate>> {
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  const out: Partial<Record<TemplateKind, BounceTemplate>> = {};
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const lineno = i + 1;
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const m = /^\s*([^=\s]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) {
      problems.push(`${origin}, line ${lineno}: missing '=' after attribute name: "${line}"`);
      continue;
    }
    const name = m[1];
    let value = m[2];
    let body = [value];
    if (value.startsWith("<<")) {
      const marker = value.slice(2).trim();
      if (marker === "") {
        problems.push(`${origin}, line ${lineno}: missing end marker after <<`);
        continue;
      }
      if (!/^[A-Za-z0-9]/.test(marker)) {
        problems.push(`${origin}, line ${lineno}: malformed end marker after <<`);
        continue;
      }
      const start = i + 1;
      let end = start;
      while (end < lines.length && lines[end] !== marker) end++;
      if (end === lines.length) {
        problems.push(`${origin}, line ${lineno}: missing "${marker}" end marker`);
        break;
      }
      body = lines.slice(start, end);
      value = body.join("\n");
      i = end;
    }
    const kind = TEMPLATE_KINDS.find((k) => name === `${k}_template`);
    if (!kind) {
      problems.push(`${origin}, line ${lineno}: unknown template name: ${name}`);
      continue;
    }
    const proto = origin === BUILTIN_ORIGIN ? undefined : builtinTemplates()[kind];
    const t = parseTemplate(kind, origin, `${origin}, line ${lineno}`, body, problems, proto);
    if (t) out[kind] = t;
  }
  return out;
}

const BUILTIN_ORIGIN = "[built-in]";
let builtin: Record<TemplateKind, BounceTemplate> | undefined;

/** Postfix's built-in templates. */
export function builtinTemplates(): Record<TemplateKind, BounceTemplate> {
  if (!builtin) {
    const problems: string[] = [];
    const parsed = parseFile(BUILTIN_TEMPLATE_FILE, BUILTIN_ORIGIN, problems);
    if (problems.length) throw new Error(`built-in bounce templates: ${problems.join("; ")}`);
    builtin = parsed as Record<TemplateKind, BounceTemplate>;
  }
  return builtin;
}

/** The times a template's text can name with a unit suffix, in seconds. */
export interface TemplateTimes {
  delay_warning_time: number;
  maximal_queue_lifetime: number;
}

const ZERO_TIMES: TemplateTimes = { delay_warning_time: 0, maximal_queue_lifetime: 0 };

const UNITS: Record<string, number> = {
  seconds: 1,
  minutes: 60,
  hours: 3600,
  days: 86400,
  weeks: 604800,
};

/** Control characters become "?", as Postfix's printable expansion. */
function printable(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, "?");
}

function lookupName(
  name: string,
  param: (name: string) => string | undefined,
  times: TemplateTimes,
): string {
  for (const p of ["delay_warning_time", "maximal_queue_lifetime"] as const) {
    if (name.startsWith(`${p}_`)) {
      const unit = name.slice(p.length + 1);
      const divisor = UNITS[unit];
      if (divisor === undefined) {
        throw new TemplateError([`unrecognized suffix "${unit}" in parameter "${name}"`]);
      }
      return String(Math.floor(times[p] / divisor));
    }
  }
  const v = param(name);
  if (v === undefined) throw new TemplateError(["undefined $name"]);
  return printable(v);
}

/** Expands one text line. @throws {TemplateError} on bad `$` syntax or an undefined name. */
function expandLine(
  line: string,
  param: (name: string) => string | undefined,
  times: TemplateTimes,
): string {
  let out = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== "$") {
      out += c;
      continue;
    }
    const next = line[i + 1];
    if (next === "$") {
      out += "$";
      i++;
      continue;
    }
    let name: string;
    if (next === "{" || next === "(") {
      const close = line.indexOf(next === "{" ? "}" : ")", i + 2);
      if (close < 0) throw new TemplateError([`bad $name syntax`]);
      name = line.slice(i + 2, close);
      i = close;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(line.slice(i + 1));
      if (!m) throw new TemplateError([`bad $name syntax`]);
      name = m[0];
      i += name.length;
    }
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new TemplateError([`bad $name syntax`]);
    out += lookupName(name, param, times);
  }
  return out;
}

/**
 * A template's text with `$name` references expanded.
 * @throws {TemplateError} on bad `$` syntax or an undefined name.
 */
export function expandTemplateText(
  t: BounceTemplate,
  param: (name: string) => string | undefined,
  times: TemplateTimes,
): string[] {
  return t.text.map((line) => {
    try {
      return expandLine(line, param, times);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      throw new TemplateError([`${t.origin}: ${e.problems[0]} in ${t.kind} template: ${line}`]);
    }
  });
}

/** `postconf -t`: the templates as a template file. */
export function dumpTemplates(ts: Record<TemplateKind, BounceTemplate>): string[] {
  const out: string[] = [];
  for (const k of TEMPLATE_KINDS) {
    const t = ts[k];
    if (out.length) out.push("");
    out.push(`${k}_template = <<EOF`, `Charset: ${t.charset}`, `From: ${t.from}`);
    out.push(`Subject: ${t.subject}`);
    if (t.postmasterSubject) out.push(`Postmaster-Subject: ${t.postmasterSubject}`);
    out.push("", ...t.text, "EOF");
  }
  return out;
}

/** `postconf -b`: the templates' expanded texts. @throws {TemplateError} */
export function dumpExpandedTemplates(
  ts: Record<TemplateKind, BounceTemplate>,
  param: (name: string) => string | undefined,
  times: TemplateTimes,
): string[] {
  const out: string[] = [];
  for (const k of TEMPLATE_KINDS) {
    if (out.length) out.push("");
    out.push(`expanded_${k}_text = <<EOF`, ...expandTemplateText(ts[k], param, times), "EOF");
  }
  return out;
}
