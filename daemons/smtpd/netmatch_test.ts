import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { inNetworks, parseIp, parseNetworks } from "./netmatch.ts";

Deno.test("netmatch", async (t) => {
  const { networks, errors } = parseNetworks(["127.0.0.0/8", "[::1]/128", "10.1.2.3", "hash:/x"]);
  await t.step("reports unsupported items", () => assertEquals(errors.length, 1));
  await t.step("matches", () => {
    assert(inNetworks("127.5.6.7", networks));
    assert(inNetworks("::1", networks));
    assert(inNetworks("::ffff:127.0.0.1", networks));
    assert(inNetworks("10.1.2.3", networks));
    assert(!inNetworks("10.1.2.4", networks));
    assert(!inNetworks("128.0.0.1", networks));
    assert(!inNetworks("::2", networks));
  });
  await t.step("parses IPv6 forms", () => {
    assertEquals(parseIp("2001:db8::1")?.[15], 1);
    assertEquals(parseIp("1:2:3:4:5:6:7:8")?.[15], 8);
    assertEquals(parseIp("1::2::3"), null);
    assertEquals(parseIp("300.1.1.1"), null);
  });
});
