/**
 * `postmap -q - type:name` for tests until commands/postmap.ts lands: reads
 * keys from stdin, one a line, opens the table with openDict and prints
 * "key<TAB>value" for each key found, with Postfix's warnings on stderr
 * ("postmap: warning: ..."), including postmap's own warning for an empty
 * result. Exit status 0 when some key was found, 1 otherwise, as postmap.
 *
 * Usage: deno run --allow-read tests/helpers/postmap_query.ts type:name
 *
 * @module
 */
import { DictError } from "../../lib/maps/dict.ts";
import { openDict } from "../../lib/maps/registry.ts";

const spec = Deno.args[0];
const warn = (m: string) => console.error(`postmap: warning: ${m}`);
const dict = await openDict(spec, { warn }).catch((e) => {
  if (!(e instanceof DictError)) throw e;
  console.error(`postmap: fatal: ${e.message}`);
  Deno.exit(1);
});
const input = new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer());
const keys = input.split("\n");
if (keys.at(-1) === "") keys.pop();
let out = "";
let found = false;
for (const key of keys) {
  const value = await dict.lookup(key);
  if (value === undefined) continue;
  found = true;
  if (value === "") {
    warn(`table ${spec}: key ${key}: empty string result is not allowed`);
    warn(`table ${spec} should return NO RESULT in case of NOT FOUND`);
  }
  out += `${key}\t${value}\n`;
}
await Deno.stdout.write(new TextEncoder().encode(out));
Deno.exit(found ? 0 : 1);
