/**
 * `unionmap:{type:name, ...}` and `pipemap:{type:name, ...}`, as Postfix's
 * dict_union and dict_pipe:
 *
 * - unionmap asks every table and joins the values found with ","
 *   (in table order); nothing found is "not found"; any table that fails
 *   makes the lookup fail.
 * - pipemap gives the key to the first table, its value to the second as
 *   the key, and so on; the last value is the result. A table that finds
 *   nothing ends the chain with "not found"; one that fails, with the
 *   failure.
 *
 * The names inside the braces are split on commas and white space outside
 * nested braces and opened as they are written (an item in extra braces is
 * not unwrapped, as Postfix). Empty braces or a name without braces is
 * Postfix's "bad syntax" error. The child tables are opened with the same
 * options (folding, warnings) as the parent.
 *
 * @module
 */
import {
  type Dict,
  DictError,
  type DictGrants,
  type DictOpener,
  type GrantsContext,
  splitMapList,
} from "./dict.ts";

/** The child table names of `type:{...}`. */
function children(type: string, name: string): string[] {
  const t = name.trim();
  const need = `need "${type}:{type:name...}"`;
  if (!t.startsWith("{") || !t.endsWith("}")) {
    throw new DictError(`bad syntax: "${type}:${name}"; ${need}`, "config");
  }
  const items = splitMapList(t.slice(1, -1));
  if (items.length === 0) throw new DictError(`bad syntax: "${type}:${name}"; ${need}`, "config");
  return items;
}

type Open = (spec: string, opts: Parameters<DictOpener>[1]) => Promise<Dict>;
type Grants = (value: string, ctx: GrantsContext) => Promise<DictGrants>;

async function openAll(type: string, name: string, opts: Parameters<DictOpener>[1], open: Open) {
  const dicts: Dict[] = [];
  try {
    for (const spec of children(type, name)) dicts.push(await open(spec, opts));
  } catch (e) {
    await Promise.all(dicts.map((d) => d.close()));
    throw e;
  }
  return dicts;
}

/**
 * The unionmap and pipemap backends. They open their children through
 * `open` and compute grants through `grants` (registry.ts passes openDict
 * and tableGrants, which avoids an import cycle).
 */
export function unionBackends(open: Open, grants: Grants) {
  const childGrants = (type: string) => (name: string, ctx: GrantsContext) =>
    grants(children(type, name).join(" "), ctx);

  const openUnion: DictOpener = async (name, opts) => {
    const dicts = await openAll("unionmap", name, opts, open);
    return {
      type: "unionmap",
      name,
      pattern: dicts.some((d) => d.pattern),
      async lookup(key) {
        const found: string[] = [];
        for (const d of dicts) {
          const v = await d.lookup(key);
          if (v !== undefined) found.push(v);
        }
        return found.length === 0 ? undefined : found.join(",");
      },
      close: async () => void await Promise.all(dicts.map((d) => d.close())),
    };
  };

  const openPipe: DictOpener = async (name, opts) => {
    const dicts = await openAll("pipemap", name, opts, open);
    return {
      type: "pipemap",
      name,
      pattern: dicts.some((d) => d.pattern),
      async lookup(key) {
        let v: string | undefined = key;
        for (const d of dicts) {
          v = await d.lookup(v);
          if (v === undefined) return undefined;
        }
        return v;
      },
      close: async () => void await Promise.all(dicts.map((d) => d.close())),
    };
  };

  return {
    unionmap: { open: openUnion, grants: childGrants("unionmap") },
    pipemap: { open: openPipe, grants: childGrants("pipemap") },
  };
}
