/**
 * STARTTLS and SASL in the smtp delivery agent (security.ts, starttls.ts)
 * against the scripted fake server (_testing.ts) with the test
 * certificates in testdata/: ca.pem signed server.pem (mx.test.example,
 * *.wild.test.example; key server.key), other_ca.pem signed nothing here.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import type { RecipientStatus } from "../../lib/deliver/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import {
  deliverRequest,
  type FakeServerScript,
  FakeSmtpServer,
  makeContext,
  OTHER_CA,
  queueMessage,
  TEST_CA,
  TEST_TLS,
} from "./_testing.ts";
import { SmtpAgent } from "./deliver.ts";

const CA = TEST_CA;
const TLS = TEST_TLS;
const resolver = fakeResolver({
  a: {
    "mx.test.example": ["127.0.0.1"],
    "other.test.example": ["127.0.0.1"],
    "a.wild.test.example": ["127.0.0.1"],
  },
});

const run = deliverRequest;

type Ctx = ServiceContext & { lines: string[] };

/**
 * A fresh server, context and agent; `mainCf` may use PORT for the
 * server's port and DIR for a scratch folder (files: name -> text, with
 * PORT replaced).
 */
async function withServer(
  script: FakeServerScript,
  mainCf: string,
  fn: (srv: FakeSmtpServer, ctx: Ctx, agent: SmtpAgent) => Promise<void>,
  files: Record<string, string> = {},
): Promise<void> {
  const srv = new FakeSmtpServer(script);
  const dir = await Deno.makeTempDir({ prefix: "pw-smtp-sec-" });
  const fill = (t: string) => t.replaceAll("PORT", String(srv.port)).replaceAll("DIR", dir);
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, fill(text));
  }
  const ctx = await makeContext(fill(mainCf));
  const agent = new SmtpAgent({ resolver });
  try {
    await fn(srv, ctx, agent);
  } finally {
    await agent.close();
    await srv.close();
    await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function send(ctx: Ctx, agent: SmtpAgent, nexthop: string): Promise<RecipientStatus> {
  const st = await run(agent, ctx, await queueMessage(ctx, nexthop, ["rcpt@dest.test"]));
  return st[0];
}

const established = (ctx: Ctx) =>
  ctx.lines.find((l) => l.includes("TLS connection established"))?.trimEnd();

Deno.test("smtp client STARTTLS", async (t) => {
  await t.step("may: TLS when offered, Untrusted without a CA, logged at loglevel 1", async () => {
    await withServer(
      { tls: TLS },
      "smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n",
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals(st.status, "sent");
        assertEquals(srv.tlsSessions, 1);
        assert(srv.messages[0].tls, "the message went over TLS");
        assertMatch(
          established(ctx)!,
          new RegExp(
            `postwarden/smtp\\[\\d+\\]: Untrusted TLS connection established to ` +
              `127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${srv.port}: TLSv1\\.3 with cipher ` +
              `TLS_\\S+ \\((128|256)/(128|256) bits\\)$`,
          ),
        );
        // Two EHLOs: before and after STARTTLS.
        assertEquals(srv.commands.filter((c) => c.startsWith("EHLO")).length, 2);
      },
    );
  });

  await t.step("may with smtp_tls_CAfile: Trusted; loglevel 0 logs nothing of it", async () => {
    await withServer(
      { tls: TLS },
      `smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\nsmtp_tls_CAfile = ${CA}\n`,
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assertMatch(established(ctx)!, /: Trusted TLS connection established to /);
      },
    );
    await withServer({ tls: TLS }, "smtp_tls_security_level = may\n", async (srv, ctx, agent) => {
      assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
      assertEquals(established(ctx), undefined);
      assertEquals(srv.tlsSessions, 1);
    });
  });

  await t.step("none (the default): no STARTTLS even when offered", async () => {
    await withServer({ tls: TLS }, "", async (srv, ctx, agent) => {
      assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
      assertEquals(srv.tlsSessions, 0);
      assert(!srv.commands.includes("STARTTLS"));
      assert(!ctx.lines.some((l) => l.includes("offered STARTTLS")));
    });
    await withServer(
      { tls: TLS },
      "smtp_tls_note_starttls_offer = yes\n",
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assert(
          ctx.lines.some((l) => l.trimEnd().endsWith("]: Host offered STARTTLS: [127.0.0.1]")),
        );
      },
    );
  });

  await t.step(
    "encrypt: not offered is 4.7.4, refused STARTTLS is the server's reply",
    async () => {
      await withServer({}, "smtp_tls_security_level = encrypt\n", async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals([st.status, st.dsn], ["deferred", "4.7.4"]);
        assertEquals(
          st.reason,
          "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]",
        );
        assertEquals(srv.messages.length, 0);
        assertMatch(ctx.lines.at(-1)!, /status=deferred \(TLS is required, but was not offered/);
      });
      await withServer(
        { starttls: "454 4.7.0 TLS not available due to local problem" },
        "smtp_enforce_tls = yes\nsmtp_tls_enforce_peername = no\n",
        async (srv, ctx, agent) => {
          const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
          assertEquals([st.status, st.dsn], ["deferred", "4.7.0"]);
          assertEquals(
            st.reason,
            "TLS is required, but host 127.0.0.1[127.0.0.1] refused to start TLS: " +
              "454 4.7.0 TLS not available due to local problem",
          );
          assertEquals(srv.messages.length, 0);
        },
      );
    },
  );

  await t.step("may: a refused STARTTLS goes on in plaintext", async () => {
    await withServer(
      { starttls: "454 4.7.0 TLS not available" },
      "smtp_use_tls = yes\n",
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assertEquals(srv.messages[0].tls, false);
      },
    );
  });

  await t.step(
    "a failed handshake: may retries that server in plaintext, encrypt defers 4.7.5",
    async () => {
      await withServer(
        { tls: TLS, starttlsGarbage: "this is no TLS record\r\n" },
        "smtp_tls_security_level = may\n",
        async (srv, ctx, agent) => {
          const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
          assertEquals(st.status, "sent");
          assertEquals(srv.connections, 2);
          assertEquals(srv.messages[0].tls, false);
          assert(ctx.lines.some((l) => l.includes(`SSL_connect error to 127.0.0.1[127.0.0.1]:`)));
        },
      );
      await withServer(
        { tls: TLS, starttlsGarbage: "this is no TLS record\r\n" },
        "smtp_tls_security_level = encrypt\n",
        async (srv, ctx, agent) => {
          const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
          assertEquals([st.status, st.dsn], ["deferred", "4.7.5"]);
          assertEquals(st.reason, "Cannot start TLS: handshake failure");
          assertEquals(srv.connections, 1);
        },
      );
    },
  );

  await t.step("a server that never answers the handshake: smtp_starttls_timeout", async () => {
    await withServer(
      { tls: TLS, starttlsStall: true },
      "smtp_tls_security_level = encrypt\nsmtp_starttls_timeout = 1s\n",
      async (srv, ctx, agent) => {
        const t0 = Date.now();
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals([st.status, st.reason], ["deferred", "Cannot start TLS: handshake failure"]);
        assert(Date.now() - t0 < 5000, "gave up after about a second");
        assert(ctx.lines.some((l) => l.includes("TLS handshake timeout")));
      },
    );
  });

  await t.step("plaintext injected after the 220 to STARTTLS is dropped", async () => {
    await withServer(
      { tls: TLS, starttlsInject: "250-fake.test\r\n250 AUTH PLAIN\r\n" },
      "smtp_tls_security_level = encrypt\n",
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals(st.status, "sent");
        assert(srv.messages[0].tls);
        // The EHLO after TLS got the server's real answer: PIPELINING, one batch.
        assert(srv.batches.includes(3), `batches: ${srv.batches}`);
      },
    );
  });

  await t.step("verify: trusted chain and the MX host name", async () => {
    const cf = `smtp_tls_security_level = verify\nsmtp_tls_CAfile = ${CA}\nsmtp_tls_loglevel = 1\n`;
    await withServer({ tls: TLS }, cf, async (srv, ctx, agent) => {
      const st = await send(ctx, agent, `[mx.test.example]:${srv.port}`);
      assertEquals(st.status, "sent");
      assertMatch(
        established(ctx)!,
        new RegExp(
          `Verified TLS connection established to mx\\.test\\.example\\[127\\.0\\.0\\.1\\]:`,
        ),
      );
    });
    await withServer({ tls: TLS }, cf, async (srv, ctx, agent) => {
      const st = await send(ctx, agent, `[other.test.example]:${srv.port}`);
      assertEquals([st.status, st.dsn, st.reason], [
        "deferred",
        "4.7.5",
        "Server certificate not verified",
      ]);
      assertEquals(st.relay, `other.test.example[127.0.0.1]:${srv.port}`);
      assertEquals(srv.messages.length, 0);
      // As Postfix 3.7: the mismatch, then "Untrusted" (chain and name are verified together).
      const i = ctx.lines.findIndex((l) =>
        l.includes(
          `server certificate verification failed for other.test.example[127.0.0.1]:${srv.port}: ` +
            "num=62:hostname mismatch",
        )
      );
      assert(i >= 0 && ctx.lines[i + 1].includes(": Untrusted TLS connection established"));
    });
    await withServer(
      { tls: TLS },
      `smtp_tls_security_level = verify\nsmtp_tls_CAfile = ${OTHER_CA}\n`,
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[mx.test.example]:${srv.port}`);
        assertEquals([st.status, st.reason], ["deferred", "Server certificate not verified"]);
        assert(
          ctx.lines.some((l) =>
            l.includes(
              `certificate verification failed for mx.test.example[127.0.0.1]:${srv.port}: ` +
                "untrusted issuer /CN=Postwarden Test CA",
            )
          ),
        );
      },
    );
    // No CA at all: nothing is trusted (Postfix does not add the system's CAs by default).
    await withServer(
      { tls: TLS },
      "smtp_tls_security_level = verify\n",
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[mx.test.example]:${srv.port}`);
        assertEquals(st.reason, "Server certificate not verified");
      },
    );
  });

  await t.step("secure: the next hop and its subdomains, wildcards, CApath", async () => {
    const caDir = await Deno.makeTempDir();
    await Deno.copyFile(CA, `${caDir}/ca.pem`);
    try {
      const cf = `smtp_tls_security_level = secure\nsmtp_tls_CApath = ${caDir}\n`;
      await withServer({ tls: TLS }, cf, async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[a.wild.test.example]:${srv.port}`)).status, "sent");
      });
      await withServer({ tls: TLS }, cf, async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[other.test.example]:${srv.port}`);
        assertEquals(st.reason, "Server certificate not verified");
      });
      await withServer(
        { tls: TLS },
        cf + "smtp_tls_secure_cert_match = .test.example\n",
        async (srv, ctx, agent) => {
          const st = await send(ctx, agent, `[other.test.example]:${srv.port}`);
          assertEquals(st.status, "sent");
        },
      );
    } finally {
      await Deno.remove(caDir, { recursive: true });
    }
  });

  await t.step("protocols and exclusions are enforced on the negotiated session", async () => {
    await withServer(
      { tls: TLS },
      "smtp_tls_security_level = encrypt\nsmtp_tls_mandatory_protocols = <=TLSv1.2\n" +
        "smtp_tls_loglevel = 1\n",
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assertMatch(established(ctx)!, /: TLSv1\.2 with cipher ECDHE-ECDSA-/);
      },
    );
    await withServer(
      { tls: TLS },
      "smtp_tls_security_level = encrypt\nsmtp_tls_mandatory_protocols = TLSv1.2\n" +
        "smtp_tls_mandatory_exclude_ciphers = aECDSA\n",
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals([st.status, st.reason], ["deferred", "Cannot start TLS: handshake failure"]);
        assert(ctx.lines.some((l) => /SSL_connect error .*excluded by the TLS policy/.test(l)));
        assertEquals(srv.messages.length, 0);
      },
    );
  });

  await t.step("smtp_tls_policy_maps: per next hop levels and attributes", async () => {
    const cf = "smtp_tls_policy_maps = texthash:DIR/tls_policy\nsmtp_tls_loglevel = 1\n" +
      `smtp_tls_CAfile = ${CA}\n`;
    // A next hop's own entry wins over the (default: none) global level.
    await withServer({}, cf, async (srv, ctx, agent) => {
      const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
      assertEquals(st.reason, "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]");
    }, { tls_policy: "[127.0.0.1]:PORT encrypt\n" });
    // secure with its own match list and protocols.
    await withServer({ tls: TLS }, cf, async (srv, ctx, agent) => {
      assertEquals((await send(ctx, agent, `[other.test.example]:${srv.port}`)).status, "sent");
      assertMatch(established(ctx)!, /Verified TLS connection .*: TLSv1\.3 /);
    }, {
      tls_policy: "[other.test.example]:PORT secure match=mx.test.example protocols=TLSv1.3\n",
    });
    // What cannot be followed defers, with a warning that says why.
    for (
      const [entry, why] of [
        ["dane", /security level "dane" needs smtp_dns_support_level = dnssec/],
        ["fingerprint", /security level "fingerprint" is not supported/],
        ["verify tafile=/etc/ta.pem", /attribute "tafile" is not supported/],
        ["encrypt match=x", /attribute "match" invalid at security level "encrypt"/],
        ["encrypt bogus=1", /invalid attribute name: "bogus"/],
        ["maybe", /invalid security level "maybe"/],
        ["encrypt protocols=TLSv1.1", /allows no protocol/],
      ] as const
    ) {
      await withServer({ tls: TLS }, cf, async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals([st.status, st.dsn, st.reason], [
          "deferred",
          "4.7.5",
          "client TLS configuration problem",
        ]);
        assertEquals(srv.connections, 0);
        const warning = ctx.lines.find((l) => l.includes("warning: "));
        assertMatch(warning ?? "", why);
      }, { tls_policy: `[127.0.0.1]:PORT ${entry}\n` });
    }
  });

  await t.step("a domain next hop with a port matches only its own entry", async () => {
    const mx = fakeResolver({
      mx: { "sub.test.example": [{ exchange: "mx.test.example", preference: 10 }] },
      a: { "mx.test.example": ["127.0.0.1"] },
    });
    for (
      const [table, status] of [
        [".test.example encrypt\n", "sent"],
        ["sub.test.example:PORT encrypt\n", "deferred"],
      ] as const
    ) {
      const srv = new FakeSmtpServer({});
      const dir = await Deno.makeTempDir();
      await Deno.writeTextFile(`${dir}/p`, table.replace("PORT", String(srv.port)));
      const ctx = await makeContext(`smtp_tls_policy_maps = texthash:${dir}/p\n`);
      const agent = new SmtpAgent({ resolver: mx });
      try {
        const st = await send(ctx, agent, `sub.test.example:${srv.port}`);
        assertEquals(st.status, status);
        if (status === "deferred") {
          assertEquals(
            st.reason,
            "TLS is required, but was not offered by host mx.test.example[127.0.0.1]",
          );
        }
      } finally {
        await agent.close();
        await srv.close();
        await Deno.remove(dir, { recursive: true });
        await Deno.remove(ctx.queue.root, { recursive: true });
      }
    }
  });

  await t.step("TLS connections are cached only with smtp_tls_connection_reuse", async () => {
    for (const [reuse, connections] of [["no", 2], ["yes", 1]] as const) {
      await withServer(
        { tls: TLS },
        `smtp_tls_security_level = encrypt\nsmtp_tls_connection_reuse = ${reuse}\n`,
        async (srv, ctx, agent) => {
          assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
          assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
          assertEquals(srv.connections, connections);
        },
      );
    }
  });
});

Deno.test("smtp client SASL", async (t) => {
  const auth = (mechanisms: string[], onlyWithTls = false) => ({
    mechanisms,
    user: "relayuser",
    password: "s3cret:with colon",
    onlyWithTls,
  });
  const passwd = "[127.0.0.1]:PORT relayuser:s3cret:with colon\n";
  const base = "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:DIR/passwd\n";

  await t.step("PLAIN over TLS with noanonymous: authenticated, then the message", async () => {
    await withServer(
      { tls: TLS, auth: auth(["PLAIN", "LOGIN"], true) },
      base + "smtp_tls_security_level = encrypt\nsmtp_sasl_tls_security_options = noanonymous\n",
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assertEquals(srv.auths, ["ok relayuser"]);
        assertEquals(srv.messages[0].authUser, "relayuser");
        assert(srv.commands.some((c) => c.startsWith("AUTH PLAIN ")));
      },
      { passwd },
    );
  });

  await t.step("LOGIN when it is the only one allowed by the filter", async () => {
    await withServer(
      { auth: auth(["PLAIN", "LOGIN"]) },
      base + "smtp_sasl_security_options = noanonymous\nsmtp_sasl_mechanism_filter = login\n",
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assertEquals(srv.auths, ["ok relayuser"]);
        assert(srv.commands.includes("AUTH LOGIN"));
      },
      { passwd },
    );
  });

  await t.step("Postfix's default noplaintext: CRAM-MD5, or no mechanism available", async () => {
    await withServer(
      { auth: auth(["PLAIN", "CRAM-MD5"]) },
      base,
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assertEquals(srv.auths, ["ok relayuser"]);
        assert(srv.commands.includes("AUTH CRAM-MD5"));
      },
      { passwd },
    );
    await withServer({ auth: auth(["PLAIN", "LOGIN"]) }, base, async (srv, ctx, agent) => {
      const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
      assertEquals([st.status, st.dsn], ["deferred", "4.7.0"]);
      assertEquals(
        st.reason,
        "SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: " +
          "no mechanism available",
      );
      assertEquals(srv.messages.length, 0);
      assert(!srv.commands.some((c) => c.startsWith("AUTH")), "no credentials went out");
    }, { passwd });
  });

  await t.step("wrong password: the server's 535, soft-bounced unless told not to", async () => {
    const wrong = "[127.0.0.1]:PORT relayuser:wrong\n";
    const cf = base + "smtp_sasl_security_options = noanonymous\n";
    await withServer({ auth: auth(["PLAIN"]) }, cf, async (srv, ctx, agent) => {
      const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
      assertEquals([st.status, st.dsn], ["deferred", "4.7.8"]);
      assertEquals(
        st.reason,
        "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: " +
          "535 5.7.8 Error: authentication failed: authentication failure",
      );
    }, { passwd: wrong });
    await withServer(
      { auth: auth(["PLAIN"]) },
      cf + "smtp_sasl_auth_soft_bounce = no\n",
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals([st.status, st.dsn], ["bounced", "5.7.8"]);
      },
      { passwd: wrong },
    );
  });

  await t.step("a filter that leaves nothing: no compatible mechanisms", async () => {
    await withServer(
      { auth: auth(["PLAIN", "LOGIN"]) },
      base + "smtp_sasl_mechanism_filter = cram-md5\n",
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals(
          st.reason,
          "SASL authentication failed: server 127.0.0.1[127.0.0.1] offered no compatible " +
            "authentication mechanisms for this type of connection security",
        );
        assert(
          ctx.lines.some((l) =>
            l.includes(
              `warning: 127.0.0.1[127.0.0.1]:${srv.port} offered no supported AUTH ` +
                "mechanisms: 'PLAIN LOGIN'",
            )
          ),
        );
      },
      { passwd },
    );
  });

  await t.step("no credentials for this server: no AUTH at all", async () => {
    await withServer(
      { auth: auth(["PLAIN"]) },
      base + "smtp_sasl_security_options =\n",
      async (srv, ctx, agent) => {
        assertEquals((await send(ctx, agent, `[127.0.0.1]:${srv.port}`)).status, "sent");
        assertEquals(srv.auths, []);
      },
      { passwd: "[192.0.2.1]:25 someone:else\n" },
    );
  });

  await t.step(
    "with credentials, a failed handshake at may is not retried in plaintext",
    async () => {
      await withServer(
        { tls: TLS, starttlsGarbage: "junk\r\n", auth: auth(["PLAIN"]) },
        base + "smtp_tls_security_level = may\nsmtp_sasl_security_options = noanonymous\n",
        async (srv, ctx, agent) => {
          const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
          assertEquals(st.reason, "Cannot start TLS: handshake failure");
          assertEquals(srv.connections, 1);
          assertEquals(srv.auths, []);
        },
        { passwd },
      );
    },
  );

  await t.step("a server that challenges forever: the dialog ends after 100 rounds", async () => {
    await withServer(
      { auth: auth(["LOGIN"]), authLoop: true },
      base + "smtp_sasl_security_options = noanonymous\n",
      async (srv, ctx, agent) => {
        const st = await send(ctx, agent, `[127.0.0.1]:${srv.port}`);
        assertEquals([st.status, st.dsn], ["deferred", "4.3.0"]);
        assertEquals(
          st.reason,
          "SASL authentication failed; authentication protocol loop with server " +
            "127.0.0.1[127.0.0.1]",
        );
        // LOGIN's two answers, then cancels ("*"), never the password again.
        const sent = srv.commands.slice(srv.commands.indexOf("AUTH LOGIN") + 1);
        assertEquals(sent.slice(2).every((c) => c === "*"), true);
        assertEquals(sent.filter((c) => c === btoa("s3cret:with colon")).length, 1);
      },
      { passwd },
    );
  });

  await t.step(
    "smtp_sender_dependent_authentication: the sender's login first, no caching",
    async () => {
      const table = "sender+ext@test.example relayuser:s3cret:with colon\n" +
        "[127.0.0.1]:PORT relayuser:wrong\n";
      const cf = base + "smtp_sasl_security_options = noanonymous\nrecipient_delimiter = +\n";
      for (
        const [dependent, outcomes] of [["yes", ["ok relayuser", "failed"]], ["no", [
          "failed",
        ]]] as const
      ) {
        await withServer(
          { auth: auth(["PLAIN"]) },
          cf + `smtp_sender_dependent_authentication = ${dependent}\n`,
          async (srv, ctx, agent) => {
            const from = async (sender: string) => {
              const req = await queueMessage(
                ctx,
                `[127.0.0.1]:${srv.port}`,
                ["r@dest.test"],
                undefined,
                {
                  sender,
                },
              );
              const file = await QueueFile.open(req.path);
              try {
                return (await agent.deliver(req, file, ctx))[0];
              } finally {
                file.close();
              }
            };
            const first = await from("sender+ext@test.example");
            if (dependent === "yes") {
              assertEquals(first.status, "sent");
              // Another sender: the next hop's (wrong) login, on a new connection.
              assertEquals((await from("other@test.example")).status, "deferred");
              assertEquals(srv.connections, 2);
            } else {
              assertEquals(first.status, "deferred");
            }
            assertEquals(srv.auths, [...outcomes]);
          },
          { passwd: table },
        );
      }
    },
  );
});
