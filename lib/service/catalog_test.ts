import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { type MasterService, parseMasterCf } from "../config/mod.ts";
import { planServices, runsAsRoot, transportService } from "./catalog.ts";

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
        "virtual/virtual",
        "lmtp/lmtp",
        "anvil/anvil",
        "maildrop/pipe",
        "uucp/pipe",
        "ifmail/pipe",
        "bsmtp/pipe",
        "scalemail-backend/pipe",
        "mailman/pipe",
      ],
    );
    for (const name of ["tlsmgr", "rewrite", "verify", "proxymap", "showq", "postlog"]) {
      assert(plan.skipped.some((l) => l.includes(`service ${name} (`)), `${name} named`);
    }
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
    assertEquals(limit({ smtpd_client_new_tls_session_rate_limit: "5" }), [
      "smtpd_client_new_tls_session_rate_limit = 5: client limits need the anvil service; add " +
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
  await t.step("postwarden_mta_sts without the mtasts service stops the start", () => {
    const errors = (cf: string, v: Record<string, string>) =>
      planServices(parseMasterCf(cf).services, (n) => v[n]).errors;
    const smtp = "smtp unix - - n - - smtp\n";
    assertEquals(errors(smtp, { postwarden_mta_sts: "no" }), []);
    assertEquals(errors(smtp, { postwarden_mta_sts: "yes" }), [
      'postwarden_mta_sts = yes needs the mtasts service; add "mtasts unix - - n 3600 1 mtasts" ' +
      "to master.cf",
    ]);
    assertEquals(errors(smtp.replace("smtp\n", "smtp -o postwarden_mta_sts=yes\n"), {}).length, 1);
    assertEquals(
      errors(smtp + "mtasts unix - - n - 1 mtasts\n", { postwarden_mta_sts: "yes" }),
      [],
    );
    assertEquals(errors(smtp, { smtp_tlsrpt_enable: "yes" }), [
      'smtp_tlsrpt_enable = yes needs the mtasts service; add "mtasts unix - - n 3600 1 mtasts" ' +
      "to master.cf",
    ]);
    assertEquals(
      errors(smtp + "mtasts unix - - n 3600 1 mtasts\n", { smtp_tlsrpt_enable: "yes" }),
      [],
    );
  });
  await t.step(
    "mail routed to a service master.cf lacks, or a listener we lack, stops the start",
    () => {
      const services = parseMasterCf(
        "smtp inet n - y - 1 qmqpd\n" +
          "cleanup unix n - y - 0 cleanup\n" +
          "dovecot unix - - n - - lmtp\n",
      ).services;
      const plan = planServices(services, (n) => n === "local_transport" ? "cyrus" : undefined);
      assertEquals(plan.errors.length, 2, plan.errors.join("\n"));
      assert(plan.errors[0].includes("QMQP is not supported"));
      assertEquals(
        plan.errors[1],
        'local_transport = cyrus: master.cf has no unix service "cyrus" that Postwarden runs',
      );
    },
  );
  await t.step("postscreen and its smtpd pass service run; other pass services do not", () => {
    const plan = planServices(
      parseMasterCf(
        "smtp inet n - y - 1 postscreen\n" +
          "smtpd pass - - y - - smtpd\n" +
          "dnsblog unix - - y - 0 dnsblog\n" +
          "other pass - - y - - qmqpd\n",
      ).services,
      () => undefined,
    );
    assertEquals(plan.run.map((s) => `${s.name}/${s.type}`), ["smtp/inet", "smtpd/pass"]);
    assert(plan.skipped.some((l) => l.includes("postscreen asks the DNS lists itself")));
    assertEquals(plan.errors, ["master.cf: service other (qmqpd): type pass is not supported"]);
  });
  await t.step("a pipe service with an attribute pipe(8) refuses or Postwarden lacks", () => {
    const plan = planServices(
      parseMasterCf(
        "a unix - n n - - pipe flags=Z user=u argv=/bin/true\n" +
          "b unix - n n - - pipe user=u chroot=/x argv=/bin/true\n" +
          "c unix - n n - - pipe flags=R argv=/bin/true\n" +
          "d unix - n n - - pipe user=u argv=bin/true\n" +
          "e unix - n n - - pipe flags=BDFORXhqu.> user=u:g size=10 eol=\\r\\n argv=true\n",
      ).services,
      () => undefined,
    );
    assertEquals(plan.errors, [
      "master.cf: service a (pipe): unknown flag: Z",
      "master.cf: service b (pipe): chroot= is not supported (the command runs in the pipe " +
      "daemon's file system)",
      "master.cf: service c (pipe): missing user= command-line attribute",
      "master.cf: service d (pipe): argv=bin/true: the program must be an absolute path or a " +
      "name in /usr/bin:/bin, without macros (its sandbox may run exactly those files)",
    ]);
  });
  await t.step("an unknown command is an error, not a silent skip", () => {
    const plan = planServices(parseMasterCf("x unix - - n - - nonesuch\n").services, () => "");
    assertEquals(plan.errors, ['master.cf: service x (nonesuch): no such command "nonesuch"']);
  });
});

Deno.test("service catalog: the auth daemon", async (t) => {
  const master = (extra: string) =>
    parseMasterCf(
      "smtp inet n - n - - smtpd\ncleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n" +
        "smtp unix - - n - - smtp\nlocal unix - - n - - local\nrelay unix - - n - - smtp\n" +
        extra,
    ).services;
  const main: Record<string, string> = { ...defaults };
  const param = (extra: Record<string, string>) => (n: string) => ({ ...main, ...extra })[n];
  await t.step("skipped while no smtpd uses passwd-file", () => {
    const plan = planServices(master("auth unix - - n - - auth\n"), param({}));
    assertEquals(plan.errors, []);
    assert(!plan.run.some((s) => s.command === "auth"));
    assert(plan.skipped.some((l) => /service auth \(auth\): skipped: no smtpd uses/.test(l)));
  });
  const file = {
    smtpd_sasl_auth_enable: "yes",
    smtpd_sasl_type: "passwd-file",
    smtpd_sasl_path: "/etc/pw",
  };
  await t.step("runs when one does; an error without it", () => {
    const plan = planServices(master("auth unix - - n - - auth\n"), param(file));
    assertEquals(plan.errors, []);
    assert(plan.run.some((s) => s.command === "auth"));
    const none = planServices(master(""), param(file));
    assertEquals(none.errors.length, 1);
    assert(none.errors[0].includes('add "auth unix - - n - - auth" to master.cf'));
  });
  await t.step("a submission -o naming another password file stops the start", () => {
    const plan = planServices(
      master(
        "auth unix - - n - - auth\nsubmission inet n - n - - smtpd -o smtpd_sasl_path=/etc/other\n",
      ),
      param(file),
    );
    assertEquals(plan.errors.length, 1);
    assert(plan.errors[0].includes("but the auth service reads /etc/pw"), plan.errors[0]);
    const viaO = planServices(
      master(
        "auth unix - - n - - auth\nsubmission inet n - n - - smtpd -o smtpd_sasl_auth_enable=yes " +
          "-o smtpd_sasl_type=passwd-file -o smtpd_sasl_path=/etc/pw\n",
      ),
      param({ smtpd_sasl_path: "/etc/pw" }),
    );
    assertEquals(viaO.errors, []);
    assert(viaO.run.some((s) => s.command === "auth"));
  });
});

Deno.test("service catalog: a content filter must name a transport that runs", () => {
  const services = parseMasterCf(
    "smtp unix - - n - - smtp\n" +
      "2525 inet n - n - - smtpd\n" +
      "127.0.0.1:10025 inet n - n - - smtpd -o content_filter=\n" +
      "127.0.0.1:10026 inet n - n - - smtpd -o content_filter=amavisfeed:[127.0.0.1]:10024\n",
  ).services;
  const param = (v: Record<string, string>) => (n: string) => v[n];
  assertEquals(
    planServices(services, param({ content_filter: "smtp:[127.0.0.1]:10024" })).errors,
    [
      "master.cf: service 127.0.0.1:10026: content_filter = amavisfeed:[127.0.0.1]:10024: " +
      'master.cf has no unix service "amavisfeed" that Postwarden runs',
    ],
  );
  assertEquals(
    planServices(services, param({ content_filter: "scan:[127.0.0.1]:10024" })).errors[0],
    'content_filter = scan:[127.0.0.1]:10024: master.cf has no unix service "scan" that Postwarden runs',
  );
});

Deno.test("runsAsRoot: local, pipe and virtual with unprivileged = n, nothing else", () => {
  const svc = (command: string, unprivileged: boolean) =>
    ({ name: command, type: "unix", command, unprivileged }) as MasterService;
  for (const agent of ["local", "pipe", "virtual"]) {
    assert(runsAsRoot(svc(agent, false)), agent);
    assert(!runsAsRoot(svc(agent, true)), `${agent} unprivileged`);
  }
  for (const other of ["smtp", "lmtp", "qmgr", "smtpd"]) assert(!runsAsRoot(svc(other, false)));
});
