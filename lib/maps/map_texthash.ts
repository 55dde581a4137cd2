/**
 * `texthash:/path`: a postmap-format source read whole at open and held in
 * memory, as Postfix's dict_thash. Malformed lines and duplicate keys are
 * reported with Postfix's words and skipped (the first value of a key
 * wins). A daemon needs read permission for the source file only.
 * `postmap texthash:file` is refused, as Postfix ("does not support
 * bulk-mode creation").
 *
 * @module
 */
import { type Dict, DictError, type DictOpener } from "./dict.ts";
import { decodeSource, foldKey, parseMapSource, resolveDuplicates } from "./source.ts";

/** Opens `texthash:name`. */
export const openTexthash: DictOpener = async (name, opts): Promise<Dict> => {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(name);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "No such file or directory"
      : (e as Error).message;
    throw new DictError(`open ${name}: ${why}`, "config");
  }
  const src = { path: name, warn: opts.warn, ignoringSuffix: true, utf8: opts.utf8 };
  const entries = resolveDuplicates(parseMapSource(decodeSource(bytes, src), src), {
    fold: opts.fold,
    utf8: opts.utf8,
    policy: "warn",
    warn: (e) => opts.warn(`${name}, line ${e.line}: duplicate entry: "${e.key}"`),
  });
  return {
    type: "texthash",
    name,
    pattern: false,
    lookup: (key) => Promise.resolve(entries.get(opts.fold ? foldKey(key, opts.utf8) : key)),
    close: () => Promise.resolve(),
  };
};

/** What a daemon needs for `texthash:name`: the source file. */
export const texthashGrants = (name: string) => Promise.resolve({ read: [name] });
