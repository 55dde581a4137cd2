/**
 * A list of tables as a parameter names them (`virtual_alias_maps =
 * hash:/etc/postfix/virtual, regexp:/etc/postfix/virtual.re`), searched in
 * order like Postfix's MAPS: the first table with an answer wins, and a
 * table that cannot answer stops the search with its DictError (Postfix's
 * maps->error), so a database outage never reads as "not found".
 *
 * @module
 */
import { type Dict, DictError, type DictOpenOptions, splitMapList } from "./dict.ts";
import { openDict } from "./registry.ts";

/** Options for {@link Maps.find}. */
export interface FindOptions {
  /**
   * The key is a partial key (a bare user, "@domain", a parent domain):
   * pattern tables are skipped, as Postfix's DICT_FLAG_FIXED lookups.
   * @default false
   */
  partial?: boolean;
}

/** The tables one parameter names, in order. */
export class Maps {
  private constructor(
    /** The parameter or context, for messages. */
    readonly title: string,
    readonly dicts: readonly Dict[],
  ) {}

  /**
   * Opens every table of a list value ("hash:/a, inline:{b=c}"). An empty
   * value gives an empty Maps that finds nothing.
   *
   * @throws {DictError} when a name is malformed or a table cannot be opened.
   */
  static async open(title: string, value: string, opts: DictOpenOptions = {}): Promise<Maps> {
    const dicts: Dict[] = [];
    try {
      for (const spec of splitMapList(value)) {
        dicts.push(await openDict(spec, { context: title, ...opts }));
      }
    } catch (e) {
      await Promise.all(dicts.map((d) => d.close()));
      throw e;
    }
    return new Maps(title, dicts);
  }

  /**
   * A Maps over tables already open (tests, and callers that open tables
   * themselves). The Maps takes them over: close() closes them.
   */
  static of(title: string, dicts: readonly Dict[]): Maps {
    return new Maps(title, [...dicts]);
  }

  /** True when no table is named. */
  get empty(): boolean {
    return this.dicts.length === 0;
  }

  /**
   * The first table's value for key, or undefined. An empty key finds
   * nothing (as Postfix: callers pass "" for an absent part).
   *
   * @throws {DictError} naming the parameter and table that failed.
   */
  async find(key: string, opts: FindOptions = {}): Promise<string | undefined> {
    if (key === "") return undefined;
    for (const dict of this.dicts) {
      if (opts.partial && dict.pattern) continue;
      let value: string | undefined;
      try {
        value = await dict.lookup(key);
      } catch (e) {
        if (e instanceof DictError) {
          throw new DictError(
            `${this.title}: ${dict.type}:${dict.name}: lookup of "${key}" failed: ${e.message}`,
            e.kind,
          );
        }
        throw e;
      }
      if (value !== undefined) return value;
    }
    return undefined;
  }

  /** Closes every table. */
  async close(): Promise<void> {
    await Promise.all(this.dicts.map((d) => d.close()));
  }
}
