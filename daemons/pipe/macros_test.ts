/** Tests for pipe(8) macro expansion: forms, per-recipient elements, flags h q u. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { expandArgv, type MacroValues } from "./macros.ts";

function values(over: Partial<MacroValues> = {}): MacroValues {
  return {
    sender: "Sender@Example.ORG",
    nexthop: "Next.Example",
    size: 1234,
    queueId: "4XyZ",
    clientAddress: "192.0.2.1",
    clientHelo: "helo.example",
    clientHostname: "client.example",
    clientProtocol: "ESMTP",
    recipients: [{ address: "Joe+List@Dom.Example", original: "alias@dom.example" }],
    delimiters: "+",
    flags: new Set(),
    ...over,
  };
}

Deno.test("pipe macros", async (t) => {
  await t.step("the three forms, $$, and unknown names", () => {
    assertEquals(
      expandArgv(
        ["-f", "${sender}", "$nexthop!rmail", "$(size)", "$$x", "${nosuch}", "$", "${x"],
        values(),
      ),
      ["-f", "Sender@Example.ORG", "Next.Example!rmail", "1234", "$x", "", "$", "${x"],
    );
    assertEquals(
      expandArgv(
        ["${queue_id}", "${client_address}", "${client_helo}", "${client_protocol}"],
        values(),
      ),
      ["4XyZ", "192.0.2.1", "helo.example", "ESMTP"],
    );
  });
  await t.step("recipient parts", () => {
    assertEquals(
      expandArgv([
        "${recipient}",
        "${user}",
        "${extension}",
        "${mailbox}",
        "${domain}",
        "${original_recipient}",
      ], values()),
      ["Joe+List@Dom.Example", "Joe", "List", "Joe+List", "Dom.Example", "alias@dom.example"],
    );
  });
  await t.step("one element per recipient; other elements once", () => {
    const v = values({
      recipients: [
        { address: "a@x.example", original: "a@x.example" },
        { address: "b@x.example", original: "b@x.example" },
      ],
    });
    assertEquals(expandArgv(["-d", "<${recipient}>", "--", "x"], v), [
      "-d",
      "<a@x.example>",
      "<b@x.example>",
      "--",
      "x",
    ]);
    assertEquals(expandArgv(["($recipient)"], v), ["(a@x.example)", "(b@x.example)"]);
  });
  await t.step("an empty ${user} leaves the element out for that recipient", () => {
    const v = values({
      recipients: [
        { address: "+bb@x.example", original: "+bb@x.example" },
        { address: "c@x.example", original: "c@x.example" },
      ],
    });
    assertEquals(expandArgv(["u=${user}"], v), ["u=+bb", "u=c"]);
    assertEquals(
      expandArgv(["u=${user}"], values({ recipients: [{ address: "@x.example", original: "" }] })),
      [],
    );
  });
  await t.step("flags: u lowercases the local part, h the domain and nexthop, q quotes", () => {
    const v = values({
      flags: new Set(["u", "h", "q"]),
      sender: "a b@S.Example",
      recipients: [{ address: "Joe Doe@Dom.Example", original: "X@Y" }],
    });
    assertEquals(
      expandArgv(["${sender}", "${nexthop}", "${recipient}", "${user}", "${domain}"], v),
      [
        '"a b"@S.Example',
        "next.example",
        '"joe doe"@dom.example',
        "joe doe",
        "dom.example",
      ],
    );
    assertEquals(expandArgv(["${sender}"], values({ sender: "", flags: new Set(["q"]) })), [""]);
  });
  await t.step("hostile addresses stay one argument each, unchanged", () => {
    const nasty = [
      "-oQ/tmp/x@a.example",
      "a;rm -rf /@b.example",
      "$(id)`id`|x@c.example",
      'q"\\@d',
    ];
    const v = values({ recipients: nasty.map((address) => ({ address, original: address })) });
    assertEquals(expandArgv(["${recipient}"], v), nasty);
  });
});
