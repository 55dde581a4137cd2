/**
 * Tests for alias expansion: lookup order and extensions, recursion, the
 * self-reference rule, duplicates, loop limits, owner- aliases, commands
 * and files (restricted or deferred), table failures, unknown users and
 * forwarding, with inline: tables and a recording mailbox.
 */
import { DictError, Maps } from "../../lib/maps/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import {
  type AliasEnv,
  expandRecipient,
  type Expansion,
  type MailboxDelivery,
  type TopRecipient,
} from "./alias.ts";

interface Fixture {
  env: AliasEnv;
  mailboxes: MailboxDelivery[];
  warnings: string[];
}

async function fixture(
  aliases: string,
  opts: Partial<Omit<AliasEnv, "localRecipients">> & {
    localRecipients?: string;
    deliveredTo?: string[];
  } = {},
): Promise<Fixture> {
  const mailboxes: MailboxDelivery[] = [];
  const warnings: string[] = [];
  const { localRecipients, deliveredTo, ...rest } = opts;
  const env: AliasEnv = {
    aliases: await Maps.open("alias_maps", aliases),
    localRecipients: localRecipients
      ? await Maps.open("local_recipient_maps", localRecipients)
      : null,
    delimiters: "+",
    propagateToAliases: false,
    ownerRequestSpecial: true,
    expandOwnerAlias: false,
    resetOwnerAlias: false,
    allowCommands: new Set(["alias", "forward"]),
    allowFiles: new Set(["alias", "forward"]),
    origin: "here.example",
    doubleBounceSender: "double-bounce",
    isLocal: (a) => a.toLowerCase().endsWith("@here.example") || !a.includes("@"),
    isDeliveredTo: (a) => (deliveredTo ?? []).includes(a.toLowerCase()),
    deliverMailbox: (m) => {
      mailboxes.push(m);
      return Promise.resolve({ status: "sent", dsn: "2.0.0", reason: "delivered to maildir" });
    },
    warn: (m) => warnings.push(m),
    ...rest,
  };
  return { env, mailboxes, warnings };
}

function expand(f: Fixture, rcpt: string | TopRecipient, sender = "s@remote.example") {
  return expandRecipient(f.env, typeof rcpt === "string" ? { address: rcpt } : rcpt, sender);
}

/** Outcomes as "status dsn address (reason)" lines. */
function lines(x: Expansion): string[] {
  return x.outcomes.map((o) => `${o.status} ${o.dsn} ${o.address} (${o.reason})`);
}

Deno.test("alias expansion", async (t) => {
  await t.step("a name that is no alias goes to its mailbox", async () => {
    const f = await fixture("inline:{other=x}");
    const x = await expand(f, "Joe+Lists@here.example");
    assertEquals(lines(x), ["sent 2.0.0 Joe+Lists@here.example (delivered to maildir)"]);
    assertEquals(f.mailboxes, [{
      user: "joe",
      address: "Joe+Lists@here.example",
      sender: "s@remote.example",
      delivered: "Joe+Lists@here.example",
      orcpt: "Joe+Lists@here.example",
    }]);
    assertEquals(x.outcomes[0].orcpt, "Joe+Lists@here.example", "no orig_to: same address");
  });

  await t.step("alice: bob delivers to bob's mailbox, logged with orig_to alice", async () => {
    const f = await fixture("inline:{alice=bob}");
    const x = await expand(f, "Alice@here.example");
    assertEquals(lines(x), ["sent 2.0.0 bob@here.example (delivered to maildir)"]);
    assertEquals(x.outcomes[0].orcpt, "Alice@here.example");
    assertEquals(f.mailboxes[0].user, "bob");
    assertEquals(f.mailboxes[0].delivered, "Alice@here.example", "Delivered-To stays alice");
  });

  await t.step("the original recipient of the queue file is kept for orig_to", async () => {
    const f = await fixture("inline:{alice=bob}");
    const x = await expand(f, { address: "alice@here.example", orcpt: "al@old.example" });
    assertEquals(x.outcomes[0].orcpt, "al@old.example");
  });

  await t.step("user+ext is looked up first, then user", async () => {
    const f = await fixture("inline:{joe+a=ann, joe=bob}");
    assertEquals(f.mailboxes, []);
    const a = await expand(f, "joe+a@here.example");
    assertEquals(a.outcomes.map((o) => o.address), ["ann@here.example"]);
    const b = await expand(f, "joe+b@here.example");
    assertEquals(b.outcomes.map((o) => o.address), ["bob@here.example"]);
  });

  await t.step(
    "the unmatched extension goes to the expansion with 'alias' propagation",
    async () => {
      const f = await fixture("inline:{joe=bob, {ann=x@remote.example}}", {
        propagateToAliases: true,
      });
      const a = await expand(f, "joe+b@here.example");
      assertEquals(a.outcomes.map((o) => o.address), ["bob+b@here.example"]);
      const b = await expand(f, "ann+z@here.example");
      assertEquals(b.forwards.map((w) => w.address), ["x+z@remote.example"]);
    },
  );

  await t.step("lookup keys are folded to lower case", async () => {
    const f = await fixture("inline:{alice=bob}");
    const x = await expand(f, "ALICE@here.example");
    assertEquals(x.outcomes.map((o) => o.address), ["bob@here.example"]);
  });

  await t.step("nested aliases expand; remote addresses are forwarded", async () => {
    const f = await fixture(
      "inline:{{staff=alice, carol@remote.example}, {alice=bob, dave@other.example}}",
    );
    const x = await expand(f, "staff@here.example");
    assertEquals(lines(x), ["sent 2.0.0 bob@here.example (delivered to maildir)"]);
    assertEquals(x.forwards.map((w) => [w.address, w.sender, w.delivered, w.orcpt]), [
      // Depth first: alice's expansion comes before staff's next member.
      ["dave@other.example", "s@remote.example", "staff@here.example", "staff@here.example"],
      ["carol@remote.example", "s@remote.example", "staff@here.example", "staff@here.example"],
    ]);
  });

  await t.step("an alias that names itself delivers that name to its mailbox", async () => {
    const f = await fixture("inline:{{alice=alice, bob}}");
    const x = await expand(f, "alice@here.example");
    assertEquals(f.mailboxes.map((m) => m.user), ["alice", "bob"]);
    assertEquals(x.outcomes.map((o) => o.status), ["sent", "sent"]);
  });

  await t.step("each mailbox and each forwarded address once per recipient", async () => {
    const f = await fixture(
      "inline:{{a=b, b, c@remote.example, C@REMOTE.example, d}, {d=b, c@remote.example}}",
    );
    const x = await expand(f, "a@here.example");
    assertEquals(f.mailboxes.map((m) => m.user), ["b"]);
    assertEquals(x.forwards.map((w) => w.address), ["c@remote.example"]);
  });

  await t.step("a mutual alias loop bounces at the nesting limit, where Postfix does", async () => {
    const f = await fixture("inline:{a=b, b=a, la=lb, lb=lc, lc=la}");
    const x = await expand(f, "a@here.example");
    const three = await expand(f, "la@here.example");
    assertEquals(lines(three), ["bounced 5.4.6 lb@here.example (alias database loop for lb)"]);
    assertEquals(lines(x), [
      "bounced 5.4.6 b@here.example (alias database loop for b)",
    ]);
    assertStringIncludes(
      f.warnings.join("\n"),
      "alias database loop for b",
    );
    assertEquals(f.mailboxes, []);
  });

  await t.step("an address named in Delivered-To is a forwarding loop", async () => {
    const f = await fixture("inline:{{alice=bob, carol}}", { deliveredTo: ["bob@here.example"] });
    const x = await expand(f, "alice@here.example");
    assertEquals(lines(x), [
      "bounced 5.4.6 bob@here.example (mail forwarding loop for bob@here.example)",
      "sent 2.0.0 carol@here.example (delivered to maildir)",
    ]);
  });

  await t.step("commands, files and :include: are deferred as not supported", async () => {
    const f = await fixture(
      'inline:{{a="|/usr/bin/vacation a", /var/log/copy, :include:/etc/list, bob}}',
    );
    const x = await expand(f, "a@here.example");
    assertEquals(lines(x), [
      'deferred 4.3.0 a@here.example (alias expansion: delivery to commands ("|/usr/bin/vacation a") is not supported yet)',
      "deferred 4.3.0 a@here.example (alias expansion: delivery to files (/var/log/copy) is not supported yet)",
      "deferred 4.3.0 a@here.example (alias expansion: :include: files (/etc/list) is not supported yet)",
      "sent 2.0.0 bob@here.example (delivered to maildir)",
    ]);
  });

  await t.step("allow_mail_to_commands/files without 'alias' bounce 5.7.1 first", async () => {
    const f = await fixture('inline:{{a="|exit 0", /dev/null}}', {
      allowCommands: new Set(["forward"]),
      allowFiles: new Set(),
    });
    const x = await expand(f, "a@here.example");
    assertEquals(lines(x), [
      "bounced 5.7.1 a@here.example (mail to command is restricted)",
      "bounced 5.7.1 a@here.example (mail to file is restricted)",
    ]);
  });

  await t.step("~ paths bounce 5.3.5: an alias has no home directory", async () => {
    const f = await fixture("inline:{{a=~/inbox, ~joe/x}}");
    const x = await expand(f, "a@here.example");
    assertEquals(x.outcomes.map((o) => `${o.status} ${o.dsn} ${o.reason}`), [
      "bounced 5.3.5 mail system configuration error",
      "bounced 5.3.5 mail system configuration error",
    ]);
    assertStringIncludes(f.warnings.join("\n"), "unknown home directory for: ~/inbox");
    assertStringIncludes(f.warnings.join("\n"), "bad home directory syntax for: ~joe/x");
  });

  await t.step("a table that cannot answer defers, never bounces", async () => {
    const f = await fixture("fail:aliases");
    const x = await expand(f, "a@here.example");
    assertEquals(lines(x), ["deferred 4.3.0 a@here.example (alias database unavailable)"]);
    assertStringIncludes(f.warnings.join("\n"), "alias_maps: fail:aliases: lookup");
    assertEquals(f.mailboxes, []);
  });

  await t.step("a resolver that cannot answer defers the expanded address", async () => {
    const f = await fixture("inline:{a=b@elsewhere.example}", {
      isLocal: () => Promise.reject(new DictError("transport_maps lookup failure")),
    });
    const x = await expand(f, "a@here.example");
    assertEquals(lines(x), [
      "deferred 4.3.0 b@elsewhere.example (address resolver failure)",
    ]);
  });

  await t.step("an alias value with no destination defers", async () => {
    const f = await fixture("inline:{a=(nobody)}");
    const x = await expand(f, "a@here.example");
    assertEquals(lines(x), ["deferred 4.3.0 a@here.example (alias database unavailable)"]);
    assertStringIncludes(f.warnings.join("\n"), "no recipient in alias lookup result for a");
  });

  await t.step("bad address syntax in an alias bounces 5.1.3", async () => {
    const f = await fixture('inline:{{a="bob@exa mple"}}');
    const x = await expand(f, "a@here.example");
    assertEquals(lines(x), [
      "bounced 5.1.3 bob@exa mple (bad recipient address syntax: bob@exa mple)",
    ]);
  });

  await t.step("owner-NAME becomes the sender; members are forwarded as new mail", async () => {
    const f = await fixture(
      "inline:{{list=bob, x@remote.example}, owner-list=admin@here.example}",
    );
    const x = await expand(
      f,
      { address: "list@here.example", notify: ["SUCCESS", "FAILURE"] },
    );
    assertEquals(f.mailboxes, [], "local members go through cleanup too");
    assertEquals(x.outcomes, []);
    assertEquals(
      x.forwards.map((w) => [w.address, w.sender, w.orcpt, w.ownerSender, w.notify]),
      [
        ["bob@here.example", "owner-list@here.example", undefined, true, ["FAILURE"]],
        ["x@remote.example", "owner-list@here.example", undefined, true, ["FAILURE"]],
      ],
    );
  });

  await t.step("expand_owner_alias uses the owner alias's value", async () => {
    const f = await fixture("inline:{list=x@remote.example, owner-list=admin}", {
      expandOwnerAlias: true,
    });
    const x = await expand(f, "list@here.example");
    assertEquals(x.forwards[0].sender, "admin@here.example");
  });

  await t.step("owner_request_special = no ignores owner- aliases", async () => {
    const f = await fixture("inline:{list=x@remote.example, owner-list=admin}", {
      ownerRequestSpecial: false,
    });
    const x = await expand(f, "list@here.example");
    assertEquals([x.forwards[0].sender, x.forwards[0].ownerSender], ["s@remote.example", false]);
  });

  await t.step("a nested alias keeps the outer owner unless reset_owner_alias", async () => {
    const table = "inline:{list=sub, owner-list=admin, sub=y@remote.example}";
    const kept = await expand(await fixture(table), "list@here.example");
    assertEquals(kept.forwards[0].sender, "owner-list@here.example");
    const reset = await expand(
      await fixture(table, { resetOwnerAlias: true }),
      "list@here.example",
    );
    // Reset forgets the owner, but the sender it set stays (Postfix's RESET_OWNER_ATTR).
    assertEquals([reset.forwards[0].sender, reset.forwards[0].ownerSender], [
      "owner-list@here.example",
      false,
    ]);
  });

  await t.step("SUCCESS is not asked again of forwarded copies", async () => {
    const f = await fixture("inline:{a=x@remote.example}");
    const only = await expand(f, { address: "a@here.example", notify: ["SUCCESS"] });
    assertEquals(only.forwards[0].notify, ["NEVER"]);
  });

  await t.step("local_recipient_maps: unknown names bounce, postmaster is discarded", async () => {
    const f = await fixture("inline:{alice=bob}", {
      localRecipients: "inline:{bob=1, carol@here.example=1}",
    });
    assertEquals(lines(await expand(f, "dave@here.example")), [
      'bounced 5.1.1 dave@here.example (unknown user: "dave")',
    ]);
    assertEquals(lines(await expand(f, "alice@here.example")), [
      "sent 2.0.0 bob@here.example (delivered to maildir)",
    ]);
    assertEquals(lines(await expand(f, "carol+x@here.example")), [
      "sent 2.0.0 carol+x@here.example (delivered to maildir)",
    ]);
    assertEquals(lines(await expand(f, "postmaster@here.example")), [
      "sent 2.0.0 postmaster@here.example (discarded)",
    ]);
    assertStringIncludes(f.warnings.join("\n"), "required alias not found: postmaster");
  });

  await t.step("local_recipient_maps that cannot answer defers", async () => {
    const f = await fixture("inline:{alice=bob}", { localRecipients: "fail:users" });
    assertEquals(lines(await expand(f, "dave@here.example")), [
      "deferred 4.3.0 dave@here.example (table lookup failure)",
    ]);
  });

  await t.step("an extension with '/' is dropped", async () => {
    const f = await fixture("inline:{joe+a/b=evil}");
    const x = await expand(f, "joe+a/b@here.example");
    assertEquals(f.mailboxes.map((m) => m.user), ["joe"]);
    assert(x.outcomes.every((o) => o.status === "sent"));
    assertStringIncludes(f.warnings.join("\n"), "address with illegal extension: joe+a/b");
  });
});
