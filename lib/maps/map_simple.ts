/**
 * The tables that need no file: `inline:{key=value, ...}`, `static:value`,
 * `fail:name` and `environ:name`, as Postfix's dict_inline, dict_static,
 * dict_fail and dict_environ.
 *
 * @module
 */
import { braced, bracedItems, type Dict, DictError, type DictOpener } from "./dict.ts";

/** A fixed table held in memory (inline:, texthash: and tests). */
export function memoryDict(
  type: string,
  name: string,
  entries: Map<string, string>,
  fold: boolean,
): Dict {
  return {
    type,
    name,
    pattern: false,
    lookup: (key) => Promise.resolve(entries.get(fold ? key.toLowerCase() : key)),
    close: () => Promise.resolve(),
  };
}

/** `inline:{ key=value, { key = text with spaces } }`. */
export const openInline: DictOpener = (name, opts) => {
  const spec = `inline:${name.trim()}`;
  const need = `need "inline:{name=value...}"`;
  if (!name.trim().startsWith("{") || !name.trim().endsWith("}")) {
    return Promise.reject(new DictError(`bad syntax: "${spec}"; ${need}`, "config"));
  }
  const inner = braced(name, spec);
  const entries = new Map<string, string>();
  for (const item of bracedItems(inner)) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? "" : item.slice(0, eq).trim();
    // Postfix's split_nameval: a name holds no white space.
    if (eq < 0 || key === "" || /\s/.test(key)) {
      return Promise.reject(
        new DictError(`missing '=' after attribute name: "${spec}"; ${need}`, "config"),
      );
    }
    // A later duplicate replaces an earlier one, as Postfix's dict_inline.
    entries.set(opts.fold ? key.toLowerCase() : key, item.slice(eq + 1).trim());
  }
  if (entries.size === 0) {
    return Promise.reject(new DictError(`bad syntax: "${spec}"; ${need}`, "config"));
  }
  return Promise.resolve(memoryDict("inline", name, entries, opts.fold));
};

/** `static:value` or `static:{ value with spaces }`: every key maps to value. */
export const openStatic: DictOpener = (name) => {
  const value = braced(name, `static:${name}`);
  return Promise.resolve({
    type: "static",
    name,
    pattern: false,
    lookup: () => Promise.resolve(value),
    close: () => Promise.resolve(),
  });
};

/** `fail:name`: every lookup fails (try again), for tests and placeholders. */
export const openFail: DictOpener = (name) =>
  Promise.resolve({
    type: "fail",
    name,
    pattern: true,
    lookup: () => Promise.reject(new DictError(`fail:${name}: table lookup failed`, "retry")),
    close: () => Promise.resolve(),
  });

/** `environ:name`: the process environment (keys are not folded). */
export const openEnviron: DictOpener = (name, opts) =>
  Promise.resolve({
    type: "environ",
    name,
    pattern: false,
    lookup: (key) => Promise.resolve(opts.env(key)),
    close: () => Promise.resolve(),
  });
