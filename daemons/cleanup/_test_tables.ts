/**
 * Test helpers for cleanup: tables built in memory. {@link regexpDict} is
 * a tiny pattern table that matches with JavaScript regular expressions
 * (first match wins, `$1` substitution), standing in for regexp:/pcre:
 * tables in unit tests; {@link mapsOf} wraps tables as a parameter's Maps.
 * Not used by the daemon.
 *
 * @module
 */
import { type Dict, DictError, Maps } from "../../lib/maps/mod.ts";

/** A pattern table: `[regexp, value]` pairs tried in order, like regexp:. */
export function regexpDict(rules: [RegExp, string][]): Dict & { keys: string[] } {
  const keys: string[] = [];
  return {
    type: "testregexp",
    name: "test",
    pattern: true,
    keys,
    lookup(key) {
      keys.push(key);
      for (const [re, value] of rules) {
        const m = re.exec(key);
        if (m) return Promise.resolve(value.replace(/\$(\d)/g, (_, n) => m[Number(n)] ?? ""));
      }
      return Promise.resolve(undefined);
    },
    close: () => Promise.resolve(),
  };
}

/** A fixed table from an object (keys as given, lookups folded to lower case). */
export function fixedDict(entries: Record<string, string>): Dict & { keys: string[] } {
  const keys: string[] = [];
  const m = new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    type: "testhash",
    name: "test",
    pattern: false,
    keys,
    lookup(key) {
      keys.push(key);
      return Promise.resolve(m.get(key.toLowerCase()));
    },
    close: () => Promise.resolve(),
  };
}

/** A table that cannot answer (database down). */
export function failingDict(): Dict {
  return {
    type: "testfail",
    name: "down",
    pattern: false,
    lookup: () => Promise.reject(new DictError("connection refused", "retry")),
    close: () => Promise.resolve(),
  };
}

/** The Maps a parameter would name, over these tables. */
export function mapsOf(title: string, ...dicts: Dict[]): Maps {
  return Maps.of(title, dicts);
}
