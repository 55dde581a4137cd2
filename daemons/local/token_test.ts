/**
 * Tests for the alias value tokenizer: Postfix's tok822 grouping (commas,
 * missing commas between words, quotes, escapes, comments, route
 * addresses, groups) and the classification of each destination.
 */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { classifyDestination, parseAliasValue } from "./token.ts";

Deno.test("parseAliasValue", async (t) => {
  const cases: [string, string[]][] = [
    ["bob", ["bob"]],
    ["bob, alice@example.com", ["bob", "alice@example.com"]],
    ["bob,alice", ["bob", "alice"]],
    // Postfix adds the missing comma between two words.
    ["bob alice", ["bob", "alice"]],
    ["  bob ,\talice ,  ", ["bob", "alice"]],
    ["a,,b", ["a", "b"]],
    ["", []],
    ["(just a comment)", []],
    ["bob (Bob Smith), (x) ann", ["bob", "ann"]],
    // Quotes keep a command with arguments together; the quotes go.
    ['"|/usr/bin/vacation bob"', ["|/usr/bin/vacation bob"]],
    ['|"/usr/bin/vacation bob"', ["|/usr/bin/vacation bob"]],
    // Unquoted, the arguments are destinations of their own (as in Postfix).
    ["|/usr/bin/procmail -a x", ["|/usr/bin/procmail", "-a", "x"]],
    ["/var/log/mail.txt", ["/var/log/mail.txt"]],
    [":include:/etc/lists/staff, bob", [":include:/etc/lists/staff", "bob"]],
    ["~/Mail/inbox", ["~/Mail/inbox"]],
    ['"john doe"@example.com', ["john doe@example.com"]],
    ['"a\\"b"@example.com', ['a"b@example.com']],
    ["a\\,b, c", ["a,b", "c"]],
    ["Joe Smith <joe@example.com>, ann", ["joe@example.com", "ann"]],
    ["<joe@example.com> trailing", ["joe@example.com", "trailing"]],
    ["staff: a, b;, c", ["a", "b", "c"]],
    ["user@[192.0.2.1]", ["user@[192.0.2.1]"]],
    ["user%other@relay", ["user%other@relay"]],
    ['"unterminated', ["unterminated"]],
    ["joe @ example . com", ["joe@example.com"]],
  ];
  for (const [value, want] of cases) {
    await t.step(JSON.stringify(value), () => {
      assertEquals(parseAliasValue(value), want);
    });
  }

  await t.step("line breaks and control characters never survive inside a destination", () => {
    const got = parseAliasValue('a\r\nX-Evil: yes, "b\r\nc"');
    for (const d of got) assert(!/[\r\n]/.test(d), JSON.stringify(d));
    assertEquals(got, ["a", "X-Evil:yes", "b  c"]);
  });

  await t.step("hostile input does not throw", () => {
    for (const v of ["<<<", ">>>", ";;;", ":::", "\\", '"', "(", "[", "((a)", "<a", "a>", "@"]) {
      parseAliasValue(v);
    }
  });
});

Deno.test("classifyDestination", () => {
  assertEquals(classifyDestination("/var/mail/x"), { kind: "file", path: "/var/mail/x" });
  assertEquals(classifyDestination("~/inbox"), { kind: "home", path: "~/inbox" });
  assertEquals(classifyDestination("|exit 67"), { kind: "command", command: "exit 67" });
  assertEquals(classifyDestination(":INCLUDE:/etc/list"), { kind: "include", path: "/etc/list" });
  assertEquals(classifyDestination("bob@example.com"), {
    kind: "address",
    address: "bob@example.com",
  });
  assertEquals(classifyDestination("include:x"), { kind: "address", address: "include:x" });
});
