import { assertEquals } from "../../tests/helpers/assert.ts";
import { openDict } from "./registry.ts";

async function table(rules: string[]) {
  const warnings: string[] = [];
  const dict = await openDict(`cidr:{ ${rules.map((r) => `{${r}}`).join(", ")} }`, {
    warn: (m) => warnings.push(m),
  });
  return { dict, warnings };
}

Deno.test("cidr: networks, addresses, first match", async () => {
  const { dict } = await table([
    "1.2.3.4 host",
    "1.2.3.0/24 net",
    "[2001:db8::]/32 doc",
    "::ffff:0:0/96 mapped",
    "0.0.0.0/0 any4",
  ]);
  assertEquals(await dict.lookup("1.2.3.4"), "host");
  assertEquals(await dict.lookup("1.2.3.255"), "net");
  assertEquals(await dict.lookup("1.2.4.0"), "any4");
  assertEquals(await dict.lookup("2001:DB8:0::7"), "doc");
  assertEquals(await dict.lookup("::ffff:1.2.3.4"), "mapped", "v4-mapped is IPv6");
  for (const bad of ["[1.2.3.4]", "01.2.3.4", "1.2.3.4 ", "host.example", "", "1:2:3:4:5:6:7::8"]) {
    assertEquals(await dict.lookup(bad), undefined, bad);
  }
  assertEquals(dict.pattern, true);
});

Deno.test("cidr: negation and if/endif, per address family", async () => {
  const { dict } = await table([
    "if !10.0.0.0/8",
    "! 192.168.0.0/16 not-private",
    "endif",
    "10.1.0.0/16 ten-one",
  ]);
  assertEquals(await dict.lookup("8.8.8.8"), "not-private");
  assertEquals(await dict.lookup("192.168.1.1"), undefined);
  assertEquals(await dict.lookup("10.1.2.3"), "ten-one");
  assertEquals(await dict.lookup("::1"), undefined, "IPv4 rules never match IPv6 keys");
});

Deno.test("cidr: bad rules are skipped with Postfix's warnings", async () => {
  const { dict, warnings } = await table([
    "1.2.3.5/24 hostbits",
    "1.2.3.4/33 long",
    "1.2.3.4/ empty",
    "1.2.3/24 short",
    "[1.2.3.4 open",
    "1.2.3.4",
    "endif",
    "if 5.0.0.0/8",
  ]);
  const n = (line: number, m: string) => `cidr map ${dict.name}, line ${line}: ${m}`;
  assertEquals(warnings, [
    n(
      1,
      'non-null host address bits in "1.2.3.5/24", perhaps you should use "1.2.3.0/24" instead: skipping this rule',
    ),
    n(2, 'bad mask length in "1.2.3.4/33": skipping this rule'),
    n(3, 'bad mask value in "1.2.3.4/": skipping this rule'),
    n(4, 'bad network value in "1.2.3/24": skipping this rule'),
    n(5, "missing ']' character after \"[1.2.3.4\": skipping this rule"),
    n(6, "no lookup result: skipping this rule"),
    n(7, "ENDIF without IF: skipping this rule"),
    n(8, "IF has no matching ENDIF"),
  ]);
});
