/**
 * Lookups per second on a 1,000-rule regexp: table (and the same table as
 * pcre:), keys that hit the first, middle and last rule and keys that miss.
 * Run: deno bench --allow-read --allow-write lib/maps/map_regexp_bench.ts
 *
 * @module
 */
import { openDict } from "./registry.ts";

const RULES = 1000;
const dir = Deno.makeTempDirSync({ prefix: "regexp-bench-" });
const posix = Array.from(
  { length: RULES },
  (_, i) => `/^user([0-9]+)@example${i}\\.com$/ rcpt$1-${i}`,
).join("\n");
const pcre = Array.from(
  { length: RULES },
  (_, i) => `/^user(\\d+)@example${i}\\.com$/ rcpt$1-${i}`,
).join("\n");
Deno.writeTextFileSync(`${dir}/t.regexp`, posix + "\n");
Deno.writeTextFileSync(`${dir}/t.pcre`, pcre + "\n");
const silent = { warn: () => {} };
const regexp = await openDict(`regexp:${dir}/t.regexp`, silent);
const pcreDict = await openDict(`pcre:${dir}/t.pcre`, silent);
const keys = ["user1@example0.com", "user22@example500.com", "user3@example999.com", "nobody@x"];

for (const [name, dict] of [["regexp", regexp], ["pcre", pcreDict]] as const) {
  for (const key of keys) {
    Deno.bench(`${name}: ${RULES} rules, ${key}`, async () => {
      await dict.lookup(key);
    });
  }
}
