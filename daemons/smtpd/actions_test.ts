/**
 * Access actions delegated to cleanup (actions.ts) as the restriction
 * engine applies them, from tables and from a policy server's reply.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { applyAction, TransactionActions } from "./actions.ts";
import { PolicyClients } from "./policy.ts";
import { checkRecipient, restrictionContext } from "./restrictions.ts";

const base = "compatibility_level = 3.6\nmyhostname = mx.example\nmydestination = mx.example\n" +
  "queue_directory = /var/spool/pw\nsmtpd_relay_restrictions =\n";

Deno.test("access actions: Postfix's checks on each action", () => {
  const warnings: string[] = [];
  const logs: string[] = [];
  const actions = new TransactionActions();
  const c = (value: string, inTransaction = true) => ({
    actions,
    inTransaction,
    name: "a@b",
    what: "Recipient address",
    table: "hash:/t",
    value,
    warn: (m: string) => warnings.push(m),
    log: (a: string, t: string) => logs.push(`${a}: ${t}`),
  });
  assertEquals(applyAction(c("HOLD", false), "HOLD", ""), null);
  assertEquals(actions.any(), false);
  assertEquals(applyAction(c("DISCARD x"), "DISCARD", "x"), "permit");
  assertEquals(applyAction(c("REDIRECT nowhere"), "REDIRECT", "nowhere"), null);
  assertEquals(applyAction(c("BCC"), "BCC", ""), null);
  assertEquals(applyAction(c("FILTER"), "FILTER", ""), null);
  assertEquals(applyAction(c("FILTER smtp"), "FILTER", "smtp"), null);
  assertEquals(applyAction(c("FILTER smtp:[::1]:10024"), "FILTER", "smtp:[::1]:10024"), null);
  assertEquals(applyAction(c("REDIRECT x@y"), "REDIRECT", "x@y"), null);
  assertEquals(applyAction(c("REDIRECT z@y"), "REDIRECT", "z@y"), null);
  assertEquals(applyAction(c("HOLD"), "HOLD", ""), null);
  assertEquals(applyAction(c("HOLD again"), "HOLD", "again"), null);
  assertEquals(warnings, [
    "access table hash:/t: with smtpd_delay_reject=no, action HOLD is always skipped in client or helo restrictions",
    'access table hash:/t entry "REDIRECT nowhere" requires user@domain target',
    'access table hash:/t entry "BCC" requires user@domain target',
    'access table hash:/t entry "FILTER" has FILTER entry without value',
    'access table hash:/t entry "FILTER smtp" requires transport:destination',
  ]);
  assertEquals(logs, [
    "discard: <a@b>: Recipient address x",
    "filter: <a@b>: Recipient address triggers FILTER smtp:[::1]:10024",
    "redirect: <a@b>: Recipient address triggers REDIRECT x@y",
    "redirect: <a@b>: Recipient address triggers REDIRECT z@y",
    "hold: <a@b>: Recipient address triggers HOLD action",
  ]);
  assertEquals(actions.envelope(false), {
    hold: true,
    discard: true,
    redirect: "z@y",
    filter: "smtp:[::1]:10024",
  });
  assertEquals(new TransactionActions().envelope(false), undefined);
  assertEquals(new TransactionActions().envelope(true), { more: true });
});

Deno.test("access actions: a policy server's HOLD, REDIRECT and BCC", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const answers: Record<string, string> = {
    "hold@mx.example": "HOLD policy says wait",
    "red@mx.example": "REDIRECT boss@mx.example",
    "bcc@mx.example": "BCC audit@mx.example",
    "disc@mx.example": "DISCARD",
  };
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(4096);
        let text = "";
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          text += new TextDecoder().decode(buf.subarray(0, n));
          let end;
          while ((end = text.indexOf("\n\n")) >= 0) {
            const rcpt = /^recipient=(.*)$/m.exec(text.slice(0, end))?.[1] ?? "";
            text = text.slice(end + 2);
            await conn.write(
              new TextEncoder().encode(`action=${answers[rcpt] ?? "DUNNO"}\n\n`),
            );
          }
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  const warnings: string[] = [];
  const c = makeConfig(
    "/x",
    base + `smtpd_recipient_restrictions = check_policy_service ` +
      `inet:127.0.0.1:${(listener.addr as Deno.NetAddr).port}, reject\n`,
  );
  const warn = (m: string) => warnings.push(m);
  const ctx = restrictionContext(c, warn, undefined, { policy: new PolicyClients(c, { warn }) });
  const actions = new TransactionActions();
  const logs: string[] = [];
  const req = (recipient: string) => ({
    client: { name: "client.example", addr: "192.0.2.7" },
    helo: "helo.example",
    sender: "a@example.org",
    recipient,
    actions,
    log: (a: string, t: string) => logs.push(`${a}: ${t}`),
  });
  try {
    // HOLD, REDIRECT and BCC do not decide: the next restriction (reject) does.
    for (const r of ["hold@mx.example", "red@mx.example", "bcc@mx.example"]) {
      assertEquals((await checkRecipient(ctx, req(r)))?.code, 554);
    }
    // DISCARD permits, and nothing is checked after it.
    assertEquals(await checkRecipient(ctx, req("disc@mx.example")), null);
    assertEquals(await checkRecipient(ctx, req("other@mx.example")), null);
    assertEquals(actions.envelope(false), {
      hold: true,
      discard: true,
      redirect: "boss@mx.example",
      bcc: ["audit@mx.example"],
    });
    assertEquals(logs[0], "hold: <hold@mx.example>: Recipient address policy says wait");
    assertEquals(warnings, []);
  } finally {
    ctx.policy.close();
    listener.close();
    await serving;
  }
});

Deno.test("access actions: end-of-data ones reach cleanup on their own", () => {
  const early = new TransactionActions();
  early.hold = true;
  early.redirect = "boss@x";
  early.filter = "smtp:[127.0.0.1]:10024";
  early.bcc.push("a@x");
  const late = early.lateStage();
  assertEquals([late.hold, late.discard, late.redirect, late.bcc], [true, false, undefined, []]);
  assertEquals(late.since(early), {});
  late.discard = true;
  late.bcc.push("b@x");
  late.filter = "scan:";
  assertEquals(late.since(early), { discard: true, filter: "scan:", bcc: ["b@x"] });
});
