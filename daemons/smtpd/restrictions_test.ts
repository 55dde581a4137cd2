import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { checkRecipient, restrictionContext } from "./restrictions.ts";

const request = (recipient: string) => ({
  client: { name: "unknown", addr: "203.0.113.5" },
  helo: "client.example",
  sender: "a@example.org",
  recipient,
});

Deno.test("restrictions: an address without domain", async (t) => {
  const main = "compatibility_level = 3.6\nmydestination = localhost\n";
  await t.step("is qualified with $myorigin for relay control", () => {
    const local = restrictionContext(makeConfig("/x", main + "myorigin = localhost\n"), () => {});
    assertEquals(checkRecipient(local, request("bob")), null);
    const remote = restrictionContext(
      makeConfig("/x", main + "myorigin = far.example\n"),
      () => {},
    );
    assertEquals(checkRecipient(remote, request("bob"))?.text, "<bob>: Relay access denied");
  });
  await t.step("stays local with append_at_myorigin = no, as Postfix resolves it", () => {
    const c = makeConfig("/x", main + "myorigin = far.example\nappend_at_myorigin = no\n");
    assertEquals(checkRecipient(restrictionContext(c, () => {}), request("bob")), null);
  });
  await t.step("is not authorized when the myorigin file cannot be read here", () => {
    const warnings: string[] = [];
    const c = makeConfig("/x", main + "myorigin = /etc/mailname\n"); // no files: not read
    const ctx = restrictionContext(c, (m) => warnings.push(m));
    assertEquals(checkRecipient(ctx, request("bob"))?.text, "<bob>: Relay access denied");
    assertEquals(checkRecipient(ctx, request("postmaster")), null);
    assertMatch(warnings[0], /^myorigin file \/etc\/mailname: .*not authorized for relaying$/);
  });
});
