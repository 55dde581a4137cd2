/**
 * check_policy_service against policy servers on loopback that this test
 * runs: well-behaved ones (attributes, connection reuse, the action as an
 * access result) and hostile ones (junk, no empty line, endless or huge
 * answers, dropped connections), which must give the default action
 * within the timeout, never a hang.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig, parsePolicyService } from "../../lib/config/mod.ts";
import { checkData, checkRecipient, restrictionContext } from "./restrictions.ts";
import { parsePolicyAnswer, PolicyClients, policySettings } from "./policy.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A policy server: `answer` gets each request's attributes and returns what to write (or null: close). */
function policyServer(
  answer: (attrs: Map<string, string>, n: number) => string | null | "hang",
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: Map<string, string>[] = [];
  const order: string[][] = [];
  let connections = 0;
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    let text = "";
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        text += decoder.decode(buf.subarray(0, n));
        let end;
        while ((end = text.indexOf("\n\n")) >= 0) {
          const lines = text.slice(0, end).split("\n");
          text = text.slice(end + 2);
          const attrs = new Map(
            lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
          );
          requests.push(attrs);
          order.push(lines.map((l) => l.slice(0, l.indexOf("="))));
          const out = answer(attrs, requests.length);
          if (out === "hang") continue;
          if (out === null) return;
          await conn.write(encoder.encode(out));
        }
      }
    } catch {
      // client went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  (async () => {
    for await (const c of listener) {
      connections++;
      serve(c);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    order,
    connections: () => connections,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

const base = "compatibility_level = 3.6\nmyhostname = mx.example\nmydestination = mx.example\n" +
  "queue_directory = /var/spool/pw\nsmtpd_relay_restrictions =\n";

function context(main: string, warnings: string[] = []) {
  const c = makeConfig("/x", base + main);
  const warn = (m: string) => warnings.push(m);
  return restrictionContext(c, warn, undefined, { policy: new PolicyClients(c, { warn }) });
}

const request = (recipient: string) => ({
  client: { name: "client.example", addr: "192.0.2.7" },
  helo: "helo.example",
  sender: "a@example.org",
  recipient,
  policy: {
    command: "RCPT",
    protocol: "ESMTP",
    clientPort: 40000,
    serverAddr: "127.0.0.1",
    serverPort: 25,
    instance: "1.2.3.4",
    size: 1234,
  },
});

Deno.test("check_policy_service: the request and the answer", async (t) => {
  const srv = policyServer((a) =>
    a.get("recipient") === "blocked@mx.example"
      ? "action=REJECT no thanks\n\n"
      : a.get("recipient") === "later@mx.example"
      ? "action=450 4.2.0 Greylisted, see http://x\nextra=ignored\n\n"
      : "action=DUNNO\n\n"
  );
  try {
    const ctx = context(
      `smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${srv.port}, ` +
        "permit_mynetworks, reject_unauth_destination\n" +
        "smtpd_policy_service_policy_context = ctx1\n",
    );
    await t.step("sends Postfix 3.7's attributes in its order", async () => {
      assertEquals(await checkRecipient(ctx, request("x@mx.example")), null);
      assertEquals(srv.order[0], [
        "request",
        "protocol_state",
        "protocol_name",
        "client_address",
        "client_name",
        "client_port",
        "reverse_client_name",
        "server_address",
        "server_port",
        "helo_name",
        "sender",
        "recipient",
        "recipient_count",
        "queue_id",
        "instance",
        "size",
        "etrn_domain",
        "stress",
        "sasl_method",
        "sasl_username",
        "sasl_sender",
        "ccert_subject",
        "ccert_issuer",
        "ccert_fingerprint",
        "ccert_pubkey_fingerprint",
        "encryption_protocol",
        "encryption_cipher",
        "encryption_keysize",
        "policy_context",
      ]);
      const a = srv.requests[0];
      assertEquals(a.get("request"), "smtpd_access_policy");
      assertEquals(a.get("protocol_state"), "RCPT");
      assertEquals(a.get("client_address"), "192.0.2.7");
      assertEquals(a.get("recipient"), "x@mx.example");
      assertEquals(a.get("recipient_count"), "0");
      assertEquals(a.get("size"), "1234");
      assertEquals(a.get("policy_context"), "ctx1");
    });
    await t.step("without TLS: the certificate and cipher attributes are empty", () => {
      const a = srv.requests[0];
      for (const n of ["ccert_subject", "ccert_fingerprint", "encryption_protocol"]) {
        assertEquals(a.get(n), "", n);
      }
      assertEquals(a.get("encryption_keysize"), "0");
    });
    await t.step("with TLS: protocol, cipher and the bits used, as Postfix", async () => {
      const n = srv.requests.length;
      const r = request("x@mx.example");
      const tls = { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 };
      assertEquals(await checkRecipient(ctx, { ...r, policy: { ...r.policy, tls } }), null);
      const a = srv.requests[n];
      assertEquals(a.get("encryption_protocol"), "TLSv1.3");
      assertEquals(a.get("encryption_cipher"), "TLS_AES_256_GCM_SHA384");
      assertEquals(a.get("encryption_keysize"), "256");
      assertEquals(a.get("ccert_fingerprint"), "");
    });
    await t.step("REJECT text becomes the recipient's rejection", async () => {
      const v = await checkRecipient(ctx, request("blocked@mx.example"));
      assertEquals(v, {
        code: 554,
        dsn: "5.7.1",
        text: "<blocked@mx.example>: Recipient address rejected: no thanks",
      });
    });
    await t.step("a numeric action with enhanced code, extra attributes ignored", async () => {
      const v = await checkRecipient(ctx, request("later@mx.example"));
      assertEquals(v, {
        code: 450,
        dsn: "4.2.0",
        text: "<later@mx.example>: Recipient address rejected: Greylisted, see http://x",
      });
    });
    await t.step("one connection serves every request, one at a time", async () => {
      await Promise.all([1, 2, 3].map(() => checkRecipient(ctx, request("x@mx.example"))));
      // Three concurrent requests may open up to three connections; sequential ones reuse.
      const before = srv.connections();
      for (let i = 0; i < 3; i++) await checkRecipient(ctx, request("x@mx.example"));
      assertEquals(srv.connections(), before);
    });
    await t.step("at DATA: recipient_count, state DATA", async () => {
      const dctx = context(
        `smtpd_data_restrictions = check_policy_service inet:127.0.0.1:${srv.port}\n`,
      );
      const n = srv.requests.length;
      await checkData(dctx, {
        ...request("x@mx.example"),
        policy: { ...request("x").policy, command: "DATA", recipientCount: 2 },
      });
      assertEquals(srv.requests[n].get("protocol_state"), "DATA");
      assertEquals(srv.requests[n].get("recipient_count"), "2");
      dctx.policy.close();
    });
    ctx.policy.close();
  } finally {
    srv.close();
  }
});

Deno.test("check_policy_service: hostile or absent servers give the default action", async (t) => {
  const rcpt = (port: number, extra = "") =>
    `smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${port}, ` +
    "reject_unauth_destination\nsmtpd_policy_service_timeout = 1s\n" +
    "smtpd_policy_service_retry_delay = 1s\n" + extra;
  const CONFIG_PROBLEM = {
    code: 451,
    dsn: "4.3.5",
    text: "<x@mx.example>: Recipient address rejected: Server configuration problem",
  };
  const cases: [string, (a: Map<string, string>, n: number) => string | null | "hang"][] = [
    ["junk without '='", () => "hello there\n\n"],
    ["no action attribute", () => "result=ok\n\n"],
    ["no empty line, then silence", () => "action=OK\n"],
    ["no answer at all", () => "hang"],
    ["connection dropped", () => null],
    ["a CR in the action (reply injection)", () => "action=REJECT a\r\n250 ok\n\n"],
    ["an endless answer", () => "x=" + "y".repeat(200_000) + "\n\n"],
    ["bytes after the answer", () => "action=OK\n\naction=OK\n\n"],
  ];
  for (const [name, answer] of cases) {
    await t.step(name, async () => {
      const srv = policyServer(answer);
      const warnings: string[] = [];
      const ctx = context(rcpt(srv.port), warnings);
      try {
        const started = Date.now();
        const v = await checkRecipient(ctx, request("x@mx.example"));
        assert(Date.now() - started < 5000, "bounded by try_limit * (timeout + retry_delay)");
        if (name === "bytes after the answer") {
          // The answer itself was good; the connection is not reused.
          assertEquals(v, null);
          await checkRecipient(ctx, request("x@mx.example"));
          assertEquals(srv.connections(), 2);
        } else {
          assertEquals(v, CONFIG_PROBLEM);
          assertMatch(warnings.join("\n"), /problem talking to server inet:127\.0\.0\.1:\d+: /);
          assertEquals(srv.requests.length, 2, "try_limit = 2 attempts");
        }
      } finally {
        ctx.policy.close();
        srv.close();
      }
    });
  }
  await t.step("nothing listening; per-service default_action in braces", async () => {
    const srv = policyServer(() => null);
    const port = srv.port;
    srv.close();
    const warnings: string[] = [];
    const ctx = context(
      "smtpd_recipient_restrictions = check_policy_service " +
        `{ inet:127.0.0.1:${port}, try_limit=1, { default_action = 421 4.7.0 go away } }, ` +
        "reject_unauth_destination\n",
      warnings,
    );
    const v = await checkRecipient(ctx, request("x@mx.example"));
    assertEquals(v, {
      code: 421,
      dsn: "4.7.0",
      text: "<x@mx.example>: Recipient address rejected: go away",
    });
    assertMatch(warnings[0], /problem talking to server inet:127\.0\.0\.1:\d+: connect/);
  });
  await t.step("a malformed argument is a configuration error", async () => {
    const warnings: string[] = [];
    const ctx = context(
      "smtpd_recipient_restrictions = check_policy_service tcp:127.0.0.1:1, " +
        "reject_unauth_destination\n",
      warnings,
    );
    assertEquals(await checkRecipient(ctx, request("x@mx.example")), {
      code: 451,
      dsn: "4.3.5",
      text: "Server configuration error",
    });
    assertMatch(warnings[0], /must be followed by inet:host:port or unix:path/);
  });
});

Deno.test("check_policy_service: connection reuse limits and unix sockets", async (t) => {
  await t.step("request_limit and max_idle close connections", async () => {
    const srv = policyServer(() => "action=DUNNO\n\n");
    let now = 0;
    try {
      const c = makeConfig(
        "/x",
        base + "smtpd_policy_service_request_limit = 2\nsmtpd_policy_service_max_idle = 10s\n",
      );
      const clients = new PolicyClients(c, { warn: () => {}, now: () => now });
      const client = clients.get(`inet:127.0.0.1:${srv.port}`);
      for (let i = 0; i < 3; i++) await client.query([["request", "smtpd_access_policy"]]);
      assertEquals(srv.connections(), 2, "a new connection after 2 requests");
      now += 11_000; // past max_idle
      await client.query([["request", "smtpd_access_policy"]]);
      assertEquals(srv.connections(), 3, "an idle connection is not reused");
      clients.close();
    } finally {
      srv.close();
    }
  });
  await t.step("unix:private/policy is under queue_directory", async () => {
    const dir = await Deno.makeTempDir();
    await Deno.mkdir(`${dir}/private`);
    const listener = Deno.listen({ transport: "unix", path: `${dir}/private/policy` });
    const served = (async () => {
      const conn = await listener.accept();
      const buf = new Uint8Array(8192);
      let text = "";
      while (!text.includes("\n\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += decoder.decode(buf.subarray(0, n));
      }
      await conn.write(encoder.encode("action=REJECT over unix\n\n"));
      conn.close();
      return text;
    })();
    try {
      const ctx = context(
        `queue_directory = ${dir}\nsmtpd_recipient_restrictions = ` +
          "check_policy_service unix:private/policy, reject_unauth_destination\n",
      );
      const v = await checkRecipient(ctx, request("x@mx.example"));
      assertEquals(v?.text, "<x@mx.example>: Recipient address rejected: over unix");
      assertMatch(await served, /^request=smtpd_access_policy\n/);
      ctx.policy.close();
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("check_policy_service: arguments and settings", async (t) => {
  await t.step("endpoints", () => {
    assertEquals(parsePolicyService("unix:private/policy", "/q").endpoint, {
      kind: "unix",
      path: "/q/private/policy",
    });
    assertEquals(parsePolicyService("unix:/run/p.sock", "/q").endpoint, {
      kind: "unix",
      path: "/run/p.sock",
    });
    assertEquals(parsePolicyService("inet:[::1]:9998", "/q").endpoint, {
      kind: "inet",
      host: "::1",
      port: 9998,
    });
    for (const bad of ["unix:../etc/x", "inet:host", "inet:h:99999", "pipe:x", "{ timeout=1s }"]) {
      let threw = false;
      try {
        parsePolicyService(bad, "/q");
      } catch {
        threw = true;
      }
      assert(threw, bad);
    }
  });
  await t.step("per-service settings override the parameters", () => {
    const c = makeConfig("/x", base + "smtpd_policy_service_timeout = 20s\n");
    const s = policySettings(
      c,
      parsePolicyService("{ unix:private/p, max_idle = 5s, policy_context=abc }", "/q"),
    );
    assertEquals(s.timeoutMs, 20_000);
    assertEquals(s.maxIdleMs, 5000);
    assertEquals(s.policyContext, "abc");
    assertEquals(s.defaultAction, "451 4.3.5 Server configuration problem");
    let threw = false;
    try {
      parsePolicyService("{ unix:private/p, bogus=1 }", "/q");
    } catch (e) {
      threw = /unknown attribute name "bogus"/.test((e as Error).message);
    }
    assert(threw);
  });
  await t.step("answers", () => {
    assertEquals(parsePolicyAnswer("action=OK\n\n"), "OK");
    assertEquals(parsePolicyAnswer("a=1\naction=DUNNO\naction=REJECT\n\n"), "DUNNO");
  });
});

Deno.test("check_policy_service: answer attributes named like object members are plain data", () => {
  assertEquals(
    parsePolicyAnswer("__proto__=x\nconstructor=y\ntoString=z\naction=REJECT no\n\n"),
    "REJECT no",
  );
  assertEquals(parsePolicyAnswer("action=DUNNO\n__proto__=action\n\n"), "DUNNO");
  for (const text of ["__proto__=action\n\n", "constructor=x\nhasOwnProperty=y\n\n"]) {
    let error = "";
    try {
      parsePolicyAnswer(text);
    } catch (e) {
      error = (e as Error).message;
    }
    assertEquals(error, "missing attribute action in answer");
  }
  assertEquals(({} as Record<string, unknown>).x, undefined);
});
