/**
 * Postfix's string and domain lists (match_list.c with match_string and
 * match_hostname): mydestination, virtual_alias_domains and
 * virtual_mailbox_domains are string lists, relay_domains is a domain
 * list. Items are tried in order and the first that matches decides;
 * `!item` negates (`!!item` is `item`); an item is a name or a `type:name`
 * lookup table (the key is looked up and any value matches).
 *
 * - A string list matches a name exactly (case-insensitive); a table is
 *   asked for the name only.
 * - A domain list also matches subdomains: `.example.com` matches below
 *   example.com; in parent style (the list's parameter is named in
 *   parent_domain_matches_subdomains, as relay_domains is by default)
 *   `example.com` matches itself and its subdomains and `.example.com`
 *   matches nothing. A table is asked for the name and, when it is a
 *   fixed-string table, for its parents (`.parent` or `parent` by style).
 *
 * Not supported: `/file/name` items (a list read from a file); opening a
 * list that has one throws a DictError (kind "config") saying so. A table
 * that cannot answer throws its DictError: Postfix's "lookup failure",
 * never "no match".
 *
 * @module
 */
import { DictError, Maps, splitMapList } from "../maps/mod.ts";

type Item =
  | { negate: boolean; kind: "name"; name: string }
  | { negate: boolean; kind: "table"; maps: Maps };

/** A string list or a domain list, its tables open. */
export class MatchList {
  private constructor(
    /** The parameter the list comes from, for messages. */
    readonly title: string,
    private readonly items: Item[],
    private readonly style: "string" | "domain" | "parent",
  ) {}

  /**
   * Parses a list value (`a.example, !b.example, inline:{c.example=x}`) and
   * opens its tables.
   *
   * @param style "string" (exact), "domain" (`.domain` matches
   *   subdomains) or "parent" (`domain` matches subdomains too).
   * @param openMaps how tables are opened (a daemon's ctx.maps). @default Maps.open
   * @throws {DictError} for a `/file` item or a table that cannot be opened.
   */
  static async open(
    title: string,
    value: string,
    style: "string" | "domain" | "parent",
    openMaps: (title: string, value: string) => Promise<Maps> = (t, v) => Maps.open(t, v),
  ): Promise<MatchList> {
    const items: Item[] = [];
    try {
      for (const raw of splitMapList(value)) {
        let text = raw;
        let negate = false;
        while (text.startsWith("!")) {
          negate = !negate;
          text = text.slice(1);
        }
        if (text.startsWith("/")) {
          throw new DictError(
            `${title}: "${raw}": lists read from a file are not supported by Postwarden; ` +
              "list the names in main.cf or use a lookup table",
            "config",
          );
        }
        if (text.includes(":") && !text.startsWith("[")) {
          items.push({ negate, kind: "table", maps: await openMaps(title, text) });
        } else {
          items.push({ negate, kind: "name", name: text.toLowerCase() });
        }
      }
    } catch (e) {
      await Promise.all(items.map((i) => i.kind === "table" ? i.maps.close() : undefined));
      throw e;
    }
    return new MatchList(title, items, style);
  }

  /** True when the list names nothing. */
  get empty(): boolean {
    return this.items.length === 0;
  }

  /**
   * Whether name is on the list (first matching item decides).
   *
   * @throws {DictError} when a table cannot answer.
   */
  async match(name: string): Promise<boolean> {
    const n = name.toLowerCase();
    for (const item of this.items) {
      const hit = item.kind === "name" ? this.matchName(n, item.name) : await this.matchTable(
        n,
        item.maps,
      );
      if (hit) return !item.negate;
    }
    return false;
  }

  private matchName(name: string, pattern: string): boolean {
    if (name === pattern) return true;
    if (this.style === "string") return false;
    if (this.style === "parent") {
      return name.length > pattern.length && name.endsWith(pattern) &&
        name[name.length - pattern.length - 1] === ".";
    }
    return pattern.startsWith(".") && name.length > pattern.length && name.endsWith(pattern);
  }

  private async matchTable(name: string, maps: Maps): Promise<boolean> {
    if (this.style === "string") return await maps.find(name) !== undefined;
    let key = name;
    let partial = false;
    for (;;) {
      if (await maps.find(key, { partial }) !== undefined) return true;
      const dot = key.indexOf(".", 1);
      if (dot < 0) return false;
      key = this.style === "parent" ? key.slice(dot + 1) : key.slice(dot);
      partial = true;
    }
  }

  /** Closes the list's tables. */
  async close(): Promise<void> {
    await Promise.all(this.items.map((i) => i.kind === "table" ? i.maps.close() : undefined));
  }
}
