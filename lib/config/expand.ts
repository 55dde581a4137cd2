/**
 * Postfix parameter expansion (`man 5 postconf`, "main.cf syntax"): `$name`,
 * `${name}`, `$(name)`, `${name?value}`, `${name:value}`, the `{value}` brace
 * forms, `${name?{v1}:{v2}}`, relational expressions
 * `${{a} op {b} ? {v1} : {v2}}` (ops == != < <= > >= and the compatibility
 * level forms <level <=level >level >=level that Postfix's own defaults use),
 * and `$$`. Values of named parameters are expanded recursively; a loop is a
 * ConfigError, never a hang.
 *
 * Pure: the caller supplies a lookup of unexpanded values. Does not know
 * about defaults or main.cf; see config.ts.
 *
 * @module
 */

import { ConfigError } from "./errors.ts";

/** Returns the unexpanded value of a parameter, or undefined when it has none. */
export type Lookup = (name: string) => string | undefined;

/** Options for expand(). */
export interface ExpandOptions {
  /** Called for each `$name` that has no value (it expands to ""). */
  onUndefined?: (name: string) => void;
  /** Names being expanded by the caller, to detect loops through them. */
  stack?: string[];
}

const NAME_CHAR = /[A-Za-z0-9_]/;
const MAX_DEPTH = 100;

/** Expand `text` with parameter values from `lookup`. Throws ConfigError on bad syntax or a loop. */
export function expand(text: string, lookup: Lookup, opts: ExpandOptions = {}): string {
  return new Expander(lookup, opts.onUndefined).text(text, [...(opts.stack ?? [])]);
}

/** Names referenced as `$name`, `${name...}` or `$(name...)` in text (no recursion, best effort). */
export function referencedNames(text: string): string[] {
  const names: string[] = [];
  const re = /\$(?:\$|[{(]\s*([A-Za-z0-9_]+)|([A-Za-z0-9_]+))/g;
  for (const m of text.matchAll(re)) {
    const name = m[1] ?? m[2];
    if (name) names.push(name);
  }
  return names;
}

/** Index of the bracket that closes the one at `open`, or -1. */
function matchingClose(s: string, open: number): number {
  const o = s[open];
  const c = o === "{" ? "}" : ")";
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === o) depth++;
    else if (s[i] === c && --depth === 0) return i;
  }
  return -1;
}

/** Split "{payload} rest" into the verbatim payload and the rest (leading whitespace dropped). */
function bracedValue(s: string, context: string): [string, string] {
  const t = s.trimStart();
  const close = matchingClose(t, 0);
  if (!t.startsWith("{") || close < 0) {
    throw new ConfigError(`syntax error: missing '}' in "${context}"`);
  }
  return [t.slice(1, close), t.slice(close + 1).trimStart()];
}

/** Compare Postfix compatibility levels like "2", "3.6", "3.10.1". */
function compareLevels(a: string, b: string): number {
  const parse = (v: string) => {
    if (!/^\d+(\.\d+){0,2}$/.test(v)) {
      throw new ConfigError(`bad compatibility level: "${v}"`);
    }
    return v.split(".").map(Number);
  };
  const x = parse(a), y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function compare(a: string, op: string, b: string): boolean {
  let d: number;
  if (op.endsWith("level")) {
    d = compareLevels(a, b);
    op = op.slice(0, -"level".length);
  } else if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    d = Number(a) - Number(b);
  } else {
    d = a < b ? -1 : a > b ? 1 : 0;
  }
  switch (op) {
    case "==":
      return d === 0;
    case "!=":
      return d !== 0;
    case "<":
      return d < 0;
    case "<=":
      return d <= 0;
    case ">":
      return d > 0;
    default: // ">="
      return d >= 0;
  }
}

const OPERATOR = /^(==|!=|<=level|>=level|<level|>level|<=|>=|<|>)/;

class Expander {
  constructor(
    private readonly lookup: Lookup,
    private readonly onUndefined?: (name: string) => void,
  ) {}

  text(s: string, stack: string[]): string {
    if (stack.length > MAX_DEPTH) {
      throw new ConfigError(`parameter expansion nested too deeply: ${stack.join(" -> ")}`);
    }
    let out = "";
    let i = 0;
    while (i < s.length) {
      const dollar = s.indexOf("$", i);
      if (dollar < 0) {
        out += s.slice(i);
        break;
      }
      out += s.slice(i, dollar);
      const next = s[dollar + 1];
      if (next === "$") {
        out += "$";
        i = dollar + 2;
      } else if (next === "{" || next === "(") {
        const close = matchingClose(s, dollar + 1);
        if (close < 0) throw new ConfigError(`truncated macro reference: "${s.slice(dollar)}"`);
        out += this.braced(s.slice(dollar + 2, close), stack);
        i = close + 1;
      } else if (next !== undefined && NAME_CHAR.test(next)) {
        let end = dollar + 1;
        while (end < s.length && NAME_CHAR.test(s[end])) end++;
        out += this.param(s.slice(dollar + 1, end), stack);
        i = end;
      } else {
        throw new ConfigError(`empty macro name: "${s}"`);
      }
    }
    return out;
  }

  private param(name: string, stack: string[]): string {
    if (stack.includes(name)) {
      throw new ConfigError(
        `parameter expansion loop: ${[...stack.slice(stack.indexOf(name)), name].join(" -> ")}`,
      );
    }
    const raw = this.lookup(name);
    if (raw === undefined) {
      this.onUndefined?.(name);
      return "";
    }
    return this.text(raw, [...stack, name]);
  }

  /** The inside of `${...}`. */
  private braced(body: string, stack: string[]): string {
    const t = body.trim();
    if (t.startsWith("{")) return this.relational(t, stack);
    const m = /^[A-Za-z0-9_]+/.exec(t);
    if (!m) throw new ConfigError(`empty macro name: "\${${body}}"`);
    const name = m[0];
    const rest = t.slice(name.length).trimStart();
    if (rest === "") return this.param(name, stack);
    const op = rest[0];
    if (op !== "?" && op !== ":") {
      throw new ConfigError(`unknown operator '${op}' in "\${${body}}"`);
    }
    const nonEmpty = this.param(name, stack) !== "";
    const after = rest.slice(1);
    if (op === ":") return nonEmpty ? "" : this.text(this.plainOrBraced(after, body), stack);
    if (!after.trimStart().startsWith("{")) return nonEmpty ? this.text(after, stack) : "";
    return this.choice(nonEmpty, after, body, stack);
  }

  /** `{v1} [: v2]` after "?": pick v1 when cond holds, else v2 (or ""). */
  private choice(cond: boolean, s: string, body: string, stack: string[]): string {
    const [v1, rest] = bracedValue(s, `\${${body}}`);
    let v2 = "";
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        throw new ConfigError(`syntax error: expected ':' in "\${${body}}"`);
      }
      v2 = this.plainOrBraced(rest.slice(1), body);
    }
    return this.text(cond ? v1 : v2, stack);
  }

  private plainOrBraced(s: string, body: string): string {
    if (!s.trimStart().startsWith("{")) return s;
    const [value, rest] = bracedValue(s, `\${${body}}`);
    if (rest !== "") throw new ConfigError(`syntax error: text after '}' in "\${${body}}"`);
    return value;
  }

  /** `{a} op {b} [? {v1} [: v2] | : v2]`; without a choice, "true" or "". */
  private relational(t: string, stack: string[]): string {
    const context = `\${${t}}`;
    const [left, afterLeft] = bracedValue(t, context);
    const m = OPERATOR.exec(afterLeft);
    if (!m) {
      throw new ConfigError(
        `"==" or "!=" or "<" or "<=" or ">=" or ">" expected at: "${afterLeft}" in "${context}"`,
      );
    }
    const [right, rest] = bracedValue(afterLeft.slice(m[0].length), context);
    const cond = compare(this.text(left, stack), m[0], this.text(right, stack));
    if (rest === "") return cond ? "true" : "";
    if (rest.startsWith(":")) {
      return cond ? "" : this.text(this.plainOrBraced(rest.slice(1), t), stack);
    }
    if (!rest.startsWith("?")) {
      throw new ConfigError(`syntax error: expected '?' or ':' in "${context}"`);
    }
    const after = rest.slice(1);
    if (!after.trimStart().startsWith("{")) return cond ? this.text(after.trimStart(), stack) : "";
    return this.choice(cond, after, t, stack);
  }
}
