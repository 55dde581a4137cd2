import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { parseMasterCf } from "../config/mod.ts";
import { planServices, transportService } from "./catalog.ts";

/** Postfix's stock master.cf, from the Postfix package the tests install (scripts/install-peers.sh). */
const STOCK = "/usr/share/postfix/master.cf.dist";

const defaults: Record<string, string> = {
  default_transport: "smtp",
  local_transport: "local:mx.example",
  relay_transport: "relay",
};

Deno.test("service catalog", async (t) => {
  await t.step("transport values name a service", () => {
    assertEquals(transportService("local:$myhostname"), "local");
    assertEquals(transportService("smtp:[relay.example]:587"), "smtp");
    assertEquals(transportService("relay"), "relay");
  });
  await t.step("the stock Postfix master.cf: runs, skips and names the rest", async () => {
    let text: string;
    try {
      text = await Deno.readTextFile(STOCK);
    } catch {
      if (Deno.env.get("CI") === "true") throw new Error(`${STOCK} missing (install-peers.sh)`);
      console.warn(`SKIPPED: ${STOCK} missing (Postfix not installed)`);
      return;
    }
    const plan = planServices(parseMasterCf(text).services, (n) => defaults[n]);
    assertEquals(plan.errors, []);
    assertEquals(
      plan.run.map((s) => `${s.name}/${s.command}`),
      [
        "smtp/smtpd",
        "pickup/pickup",
        "cleanup/cleanup",
        "qmgr/qmgr",
        "bounce/bounce",
        "defer/bounce",
        "trace/bounce",
        "smtp/smtp",
        "relay/smtp",
        "error/error",
        "retry/error",
        "discard/discard",
        "local/local",
        "anvil/anvil",
      ],
    );
    for (const name of ["tlsmgr", "rewrite", "verify", "proxymap", "showq", "postlog"]) {
      assert(plan.skipped.some((l) => l.includes(`service ${name} (`)), `${name} named`);
    }
    assert(plan.skipped.some((l) => /service maildrop \(pipe\): skipped/.test(l)));
  });
  await t.step("a client limit without an anvil service stops the start", () => {
    const services = parseMasterCf("smtp inet n - y - - smtpd\n").services;
    const limit = (v: Record<string, string>) => planServices(services, (n) => v[n]).errors;
    assertEquals(limit({}), [], "the default count limit alone is not enforced without anvil");
    assertEquals(limit({ smtpd_client_connection_count_limit: "0" }), []);
    assertEquals(limit({ smtpd_client_message_rate_limit: "10" }), [
      "smtpd_client_message_rate_limit = 10: client limits need the anvil service; add " +
      '"anvil unix - - n - 1 anvil" to master.cf',
    ]);
    const withOverride = parseMasterCf(
      "smtp inet n - y - - smtpd -o smtpd_client_connection_count_limit=5\n",
    ).services;
    assertEquals(planServices(withOverride, () => undefined).errors.length, 1);
    const withAnvil = parseMasterCf(
      "smtp inet n - y - - smtpd\nanvil unix - - n - 1 anvil\n",
    ).services;
    assertEquals(
      planServices(withAnvil, (n) => n === "smtpd_client_message_rate_limit" ? "10" : undefined)
        .errors,
      [],
    );
  });
  await t.step("mail routed to a missing agent, or a listener we lack, stops the start", () => {
    const services = parseMasterCf(
      "smtp inet n - y - 1 postscreen\n" +
        "cleanup unix n - y - 0 cleanup\n" +
        "dovecot unix - n n - - pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/deliver\n",
    ).services;
    const plan = planServices(services, (n) => n === "local_transport" ? "dovecot" : undefined);
    assertEquals(plan.errors.length, 2, plan.errors.join("\n"));
    assert(plan.errors[0].includes("postscreen is not supported"));
    assert(plan.errors[1].includes("local_transport = dovecot"));
  });
  await t.step("an unknown command is an error, not a silent skip", () => {
    const plan = planServices(parseMasterCf("x unix - - n - - nonesuch\n").services, () => "");
    assertEquals(plan.errors, ['master.cf: service x (nonesuch): no such command "nonesuch"']);
  });
});
