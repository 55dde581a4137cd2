/**
 * AUTH in smtpd sessions run in memory, with the passwd-file style
 * backend (lib/sasl PasswordBackend) over a fake password check: the EHLO
 * keyword and when it is hidden, each AUTH reply and warning, the error
 * sleep and error count, the response limit, what a successful AUTH
 * changes (relaying, the Received header, the "client=" line), and the
 * sender login restrictions. The same replies are compared with Postfix
 * and Dovecot in tests/interop/sasl_test.ts.
 */
import { join } from "node:path";
import { CleanupSession } from "../../lib/cleanup/client.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { Logger } from "../../lib/log/mod.ts";
import {
  encodeBase64,
  type PasswordCheck,
  type SaslBackend,
  type SaslMechanism,
} from "../../lib/sasl/mod.ts";
import { PasswordBackend } from "../../lib/sasl/passwd_client.ts";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { fakeCleanup, type Submission } from "../../tests/helpers/fake_cleanup.ts";
import {
  type AuthAttempt,
  authCommand,
  authContext,
  authKeywords,
  type AuthSession,
  receivedProtocol,
} from "./auth.ts";
import { resolveFor, restrictionContext } from "./restrictions.ts";
import { runSession } from "./session.ts";

const USERS: Record<string, string> = { alice: "secret", bob: "hunter2" };

const check: PasswordCheck = (user, password) => {
  const ok = USERS[user] !== undefined && new TextDecoder().decode(password) === USERS[user];
  return Promise.resolve(ok ? { status: "ok", username: user } : { status: "fail" });
};

const plain = (user: string, pass: string) => encodeBase64(`\0${user}\0${pass}`);

interface Result {
  replies: string[];
  logs: string[];
  got: Submission[];
  attempts: AuthAttempt[];
  ms: number;
}

/** Runs one session: `lines` sent at once (pipelined), then end of stream. */
async function session(
  lines: string[],
  opts: { config?: string[]; client?: string; backend?: SaslBackend } = {},
): Promise<Result> {
  const dir = await Deno.makeTempDir({ prefix: "smtpd-auth-" });
  const socket = join(dir, "cleanup");
  await Deno.mkdir(join(dir, "maildrop"));
  const { server, got } = fakeCleanup(socket, join(dir, "maildrop"));
  const config = makeConfig(
    dir,
    [
      "compatibility_level = 3.6",
      "mynetworks = 127.0.0.1/32",
      "smtpd_sasl_auth_enable = yes",
      "smtpd_sasl_type = passwd-file",
      "smtpd_sasl_path = /nonexistent/passwd",
      "smtpd_error_sleep_time = 0",
      // The whole script arrives in one read: pipelined, as Postfix 3.9 would disconnect.
      "smtpd_forbid_unauth_pipelining = no",
      ...(opts.config ?? []),
    ].join("\n"),
    { hostname: "mx.test.example" },
  );
  const logs: string[] = [];
  const log = new Logger({
    program: "postwarden/smtpd",
    hostname: "mx",
    sinks: [(l) => logs.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const restrictions = restrictionContext(config, (m) => log.warn(m));
  const r = restrictions;
  restrictions.senderLogin = {
    maps: config.str("smtpd_sender_login_maps")
      ? () => r.access.open("smtpd_sender_login_maps", config.str("smtpd_sender_login_maps"))
      : null,
    canonical: async (s) => {
      const res = await resolveFor(r, s, s);
      return { address: res.recipient, local: res.class === "local" };
    },
    delimiters: "",
    doubleBounceSender: "double-bounce",
  };
  const auth = authContext(config, opts.backend ?? new PasswordBackend(check));
  const attempts: AuthAttempt[] = [];
  if (auth) auth.afterAuthAttempt = (a) => void attempts.push(a);
  let out = "";
  let sent = false;
  const cm = /^(.*)\[(.*)\]$/.exec(opts.client ?? "client.example[192.0.2.7]")!;
  const t0 = Date.now();
  await runSession({
    config,
    log,
    client: { name: cm[1], addr: cm[2], port: 1234 },
    serverAddr: "192.0.2.1",
    read: () => {
      if (sent) return Promise.resolve(null);
      sent = true;
      return Promise.resolve(new TextEncoder().encode(lines.map((l) => l + "\r\n").join("")));
    },
    write: (b) => {
      out += new TextDecoder().decode(b);
      return Promise.resolve();
    },
    openCleanup: () => CleanupSession.open(socket, { retryMs: 0 }),
    restrictions,
    auth,
    now: () => new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
  });
  const ms = Date.now() - t0;
  server.close();
  await server.done;
  await Deno.remove(dir, { recursive: true });
  const replies = out.match(/(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/g) ?? [];
  return { replies: replies.map((x) => x.replace(/\r\n$/, "")), logs, got, attempts, ms };
}

const EHLO = "EHLO client.example";

Deno.test("smtpd AUTH", async (t) => {
  await t.step("EHLO offers AUTH PLAIN LOGIN after VRFY, AUTH= for broken clients", async () => {
    const r = await session([EHLO]);
    assertMatch(
      r.replies[1],
      /250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES/,
    );
    const b = await session([EHLO], { config: ["broken_sasl_auth_clients = yes"] });
    assertMatch(b.replies[1], /250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n/);
  });

  await t.step("not offered: disabled, TLS required without TLS, noplaintext", async () => {
    for (
      const config of [
        ["smtpd_sasl_auth_enable = no"],
        ["smtpd_tls_auth_only = yes"],
        ["smtpd_sasl_security_options = noanonymous, noplaintext"],
      ]
    ) {
      const r = await session([EHLO, `AUTH PLAIN ${plain("alice", "secret")}`], { config });
      assert(!r.replies[1].includes("AUTH"), config[0]);
      assertEquals(r.replies[2], "503 5.5.1 Error: authentication not enabled", config[0]);
    }
  });

  await t.step("smtpd_sasl_exceptions_networks hides the keyword, AUTH still works", async () => {
    const r = await session([EHLO, `AUTH PLAIN ${plain("alice", "secret")}`], {
      config: ["smtpd_sasl_exceptions_networks = 192.0.2.0/24"],
    });
    assert(!r.replies[1].includes("AUTH"));
    assertEquals(r.replies[2], "235 2.7.0 Authentication successful");
  });

  await t.step("PLAIN: success, then AUTH again; AUTH in a transaction", async () => {
    const r = await session([
      EHLO,
      `AUTH PLAIN ${plain("alice", "secret")}`,
      `AUTH PLAIN ${plain("alice", "secret")}`,
      "MAIL FROM:<a@example.org>",
      "AUTH LOGIN",
      "QUIT",
    ]);
    assertEquals(r.replies.slice(2), [
      "235 2.7.0 Authentication successful",
      "503 5.5.1 Error: already authenticated",
      "250 2.1.0 Ok",
      "503 5.5.1 Error: MAIL transaction in progress",
      "221 2.0.0 Bye",
    ]);
    assertEquals(r.attempts, [{
      clientAddr: "192.0.2.7",
      clientName: "client.example",
      mechanism: "PLAIN",
      ok: true,
    }]);
    assertMatch(r.logs.at(-1)!, / ehlo=1 auth=1\/3 mail=1 quit=1 commands=4\/6$/);
  });

  await t.step(
    "LOGIN with 334 challenges; '*' aborts; empty PLAIN challenge keeps its space",
    async () => {
      const r = await session([
        EHLO,
        "AUTH LOGIN",
        encodeBase64("bob"),
        "*",
        "AUTH PLAIN",
        "*",
        "AUTH LOGIN " + encodeBase64("bob"),
        encodeBase64("hunter2"),
      ]);
      assertEquals(r.replies.slice(2), [
        "334 VXNlcm5hbWU6",
        "334 UGFzc3dvcmQ6",
        "501 5.7.0 Authentication aborted",
        "334 ",
        "501 5.7.0 Authentication aborted",
        "334 UGFzc3dvcmQ6",
        "235 2.7.0 Authentication successful",
      ]);
      assert(
        r.logs.includes("warning: client.example[192.0.2.7]: SASL LOGIN authentication aborted"),
      );
    },
  );

  await t.step("failures: 535 5.7.8 with Postfix's texts and warnings", async () => {
    const r = await session([
      EHLO,
      "AUTH",
      "AUTH FOO",
      "AUTH PLAIN !!!",
      "AUTH PLAIN =",
      "AUTH LOGIN =",
      "not base64",
      `AUTH PLAIN ${plain("alice", "wrong")}`,
      `AUTH PLAIN ${encodeBase64("carol\0carol\0x")}`,
    ]);
    assertEquals(r.replies.slice(2), [
      "501 5.5.4 Syntax: AUTH mechanism",
      "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
      "535 5.7.8 Error: authentication failed: Invalid base64 data in initial response",
      "535 5.7.8 Error: authentication failed: (reason unavailable)",
      "334 VXNlcm5hbWU6",
      "535 5.7.8 Error: authentication failed: Invalid base64 data in continued response",
      "535 5.7.8 Error: authentication failed: (reason unavailable)",
      "535 5.7.8 Error: authentication failed: (reason unavailable)",
    ]);
    const warnings = r.logs.filter((l) => l.startsWith("warning:"));
    assertEquals(warnings, [
      "warning: client.example[192.0.2.7]: SASL FOO authentication failed: Invalid authentication mechanism, sasl_username=(unavailable)",
      "warning: client.example[192.0.2.7]: SASL PLAIN authentication failed: Invalid base64 data in initial response, sasl_username=(unavailable)",
      "warning: client.example[192.0.2.7]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=(unavailable)",
      "warning: client.example[192.0.2.7]: SASL LOGIN authentication failed: Invalid base64 data in continued response, sasl_username=(unavailable)",
      "warning: client.example[192.0.2.7]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=alice",
      "warning: client.example[192.0.2.7]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=carol",
    ]);
  });

  await t.step("a wrong password costs smtpd_error_sleep_time and counts as an error", async () => {
    const r = await session(
      [EHLO, `AUTH PLAIN ${plain("alice", "x")}`, `AUTH PLAIN ${plain("alice", "y")}`, "NOOP"],
      { config: ["smtpd_error_sleep_time = 1s", "smtpd_hard_error_limit = 2"] },
    );
    assert(r.ms >= 2000, `took ${r.ms} ms`);
    assertEquals(r.replies.slice(2), [
      "535 5.7.8 Error: authentication failed: (reason unavailable)",
      "535 5.7.8 Error: authentication failed: (reason unavailable)",
      "421 4.7.0 mx.test.example Error: too many errors",
    ]);
    assertEquals(r.attempts.map((a) => a.ok), [false, false]);
  });

  await t.step("smtpd_sasl_response_limit: 500 5.5.6, the rest of the line dropped", async () => {
    const r = await session([EHLO, "AUTH LOGIN", "A".repeat(3000), "NOOP"], {
      config: ["smtpd_sasl_response_limit = 2048"],
    });
    assertEquals(r.replies.slice(2), [
      "334 VXNlcm5hbWU6",
      "500 5.5.6 SASL response limit exceeded",
      "250 2.0.0 Ok",
    ]);
    assert(r.logs.includes(
      `warning: client.example[192.0.2.7]: request longer than 2048: ${"A".repeat(30)}...`,
    ));
    // Between line_length_limit and the response limit a response is accepted.
    const ok = await session([EHLO, "AUTH LOGIN", "QUFB" + "A".repeat(4000), "NOOP"]);
    assertEquals(ok.replies[3], "334 UGFzc3dvcmQ6");
  });

  await t.step("a backend that cannot answer: 454 4.7.0", async () => {
    const r = await session([EHLO, `AUTH PLAIN ${plain("alice", "secret")}`], {
      backend: new PasswordBackend(() =>
        Promise.resolve({ status: "temp", reason: "Connection lost to authentication server" })
      ),
    });
    assertEquals(
      r.replies[2],
      "454 4.7.0 Temporary authentication failure: Connection lost to authentication server",
    );
  });

  await t.step("after AUTH: relaying, ESMTPA, client= and the authenticated header", async () => {
    const msg = ["DATA", "Subject: x", "", "hi", "."];
    const relay = [
      "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, " +
      "reject_unauth_destination",
    ];
    const denied = await session([EHLO, "MAIL FROM:<a@example.org>", "RCPT TO:<x@example.com>"], {
      config: relay,
    });
    assertEquals(denied.replies[3], "554 5.7.1 <x@example.com>: Relay access denied");
    const r = await session(
      [
        EHLO,
        `AUTH PLAIN ${plain("alice", "secret")}`,
        "MAIL FROM:<a@example.org> AUTH=<alice@example.org>",
        "RCPT TO:<x@example.com>",
        ...msg,
      ],
      { config: [...relay, "smtpd_sasl_authenticated_header = yes"] },
    );
    assertEquals(r.replies.slice(2, 5), [
      "235 2.7.0 Authentication successful",
      "250 2.1.0 Ok",
      "250 2.1.5 Ok",
    ]);
    assertMatch(
      r.logs.find((l) => l.includes("client="))!,
      /^CLEANUP1: client=client\.example\[192\.0\.2\.7\], sasl_method=PLAIN, sasl_username=alice, sasl_sender=<alice@example\.org>$/,
    );
    assertMatch(
      r.got[0].content,
      /^Received: from client\.example \(client\.example \[192\.0\.2\.7\]\)\r\n\t\(Authenticated sender: alice\)\r\n\tby mx\.test\.example \(Postwarden\) with ESMTPA id CLEANUP1/,
    );
    const noAuth = await session([EHLO, "MAIL FROM:<a@example.org> AUTH=<>"], {
      config: ["smtpd_sasl_auth_enable = no"],
    });
    // Without AUTH, Postfix ignores the parameter (smtp_sessions_test compares it).
    assertEquals(noAuth.replies[2], "250 2.1.0 Ok");
  });

  await t.step("sender login maps", async () => {
    const config = [
      "smtpd_sender_login_maps = inline:{alice@example.org=alice, {shared@example.org=alice bob}}",
    ];
    const run = async (restriction: string, login: string | null, sender: string) => {
      const r = await session([
        EHLO,
        ...(login ? [`AUTH PLAIN ${plain(login, USERS[login])}`] : []),
        `MAIL FROM:<${sender}>`,
        "RCPT TO:<postmaster@mx.test.example>",
        "RCPT TO:<x@mx.test.example>",
      ], {
        config: [
          ...config,
          "mydestination = mx.test.example",
          `smtpd_sender_restrictions = ${restriction}`,
          "local_recipient_maps =",
        ],
      });
      return r.replies.at(-1)!;
    };
    const owned = "553 5.7.1 <alice@example.org>: Sender address rejected: not owned by user bob";
    const out = "553 5.7.1 <alice@example.org>: Sender address rejected: not logged in";
    assertEquals(await run("reject_sender_login_mismatch", "bob", "alice@example.org"), owned);
    assertEquals(
      await run("reject_sender_login_mismatch", "alice", "alice@example.org"),
      "250 2.1.5 Ok",
    );
    assertEquals(
      await run("reject_sender_login_mismatch", "bob", "shared@example.org"),
      "250 2.1.5 Ok",
    );
    assertEquals(await run("reject_sender_login_mismatch", null, "alice@example.org"), out);
    assertEquals(
      await run("reject_sender_login_mismatch", null, "other@example.org"),
      "250 2.1.5 Ok",
    );
    assertEquals(
      await run("reject_sender_login_mismatch", "bob", "other@example.org"),
      "553 5.7.1 <other@example.org>: Sender address rejected: not owned by user bob",
    );
    assertEquals(
      await run("reject_known_sender_login_mismatch", "bob", "other@example.org"),
      "250 2.1.5 Ok",
    );
    assertEquals(
      await run("reject_known_sender_login_mismatch", "bob", "alice@example.org"),
      owned,
    );
    assertEquals(await run("reject_known_sender_login_mismatch", null, "alice@example.org"), out);
    assertEquals(
      await run("reject_authenticated_sender_login_mismatch", null, "alice@example.org"),
      "250 2.1.5 Ok",
    );
    assertEquals(
      await run("reject_unauthenticated_sender_login_mismatch", "bob", "alice@example.org"),
      "250 2.1.5 Ok",
    );
    assertEquals(
      await run("reject_unauthenticated_sender_login_mismatch", null, "alice@example.org"),
      out,
    );
  });
});

Deno.test("smtpd AUTH: hostile input ends in replies, never a crash", async () => {
  const junk = (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const len = Math.floor(Math.random() * (i % 7 === 0 ? 20_000 : 80));
      let line = "";
      for (let j = 0; j < len; j++) line += String.fromCharCode(Math.floor(Math.random() * 256));
      out.push(line.replace(/\n/g, ""));
    }
    return out;
  };
  for (let round = 0; round < 20; round++) {
    const lines = [EHLO];
    for (const j of junk(12)) {
      lines.push(
        ["AUTH LOGIN", "AUTH PLAIN", `AUTH PLAIN ${j}`, `AUTH LOGIN ${j}`][round % 4],
        j,
        encodeBase64(j),
        `\0${j}`,
      );
    }
    const r = await session(lines, {
      config: ["smtpd_hard_error_limit = 1000", "smtpd_soft_error_limit = 1000"],
    });
    assert(r.replies.length > 2, "the session answered");
    for (const reply of r.replies) {
      // 221: a junk line that smtpd_forbidden_commands names (lower case first) ends the session.
      assertMatch(reply.slice(0, 3), /^(220|221|250|334|235|500|501|503|535)$/, reply.slice(0, 80));
    }
    assertMatch(r.logs.at(-1)!, /^disconnect from /);
  }
});

/** A backend offering mechanisms with Dovecot's properties, for the security options. */
class MechBackend extends PasswordBackend {
  constructor(readonly list: SaslMechanism[]) {
    super(check);
  }
  override mechanisms() {
    return Promise.resolve(this.list);
  }
}

Deno.test("smtpd AUTH: security options filter the backend's mechanisms", async () => {
  const backend = new MechBackend([
    { name: "PLAIN", props: ["plaintext"] },
    { name: "ANONYMOUS", props: ["anonymous"] },
    { name: "CRAM-MD5", props: ["dictionary"] },
    { name: "EXTERNAL", props: [] },
  ]);
  const r = await session([EHLO], { backend });
  assertMatch(r.replies[1], /250-AUTH PLAIN CRAM-MD5\r\n/);
  const n = await session([EHLO], {
    backend,
    config: ["smtpd_sasl_security_options = noanonymous, noplaintext, nodictionary"],
  });
  assert(!n.replies[1].includes("AUTH"));
});

Deno.test("smtpd AUTH with TLS active (the session's tls field set)", async (t) => {
  const config = (extra: string[]) =>
    makeConfig("/x", ["smtpd_sasl_auth_enable = yes", ...extra].join("\n"));
  const fake = (secured: boolean) => {
    const replies: string[] = [];
    const s: AuthSession = {
      client: "c[192.0.2.7]",
      clientAddr: "192.0.2.7",
      clientName: "c",
      serverAddr: "192.0.2.1",
      helo: "c",
      sender: null,
      secured,
      sasl: null,
      reply: (code, enhanced, text) => void replies.push(`${code} ${enhanced ?? ""} ${text}`),
      challenge: (text) => void replies.push(`334 ${text}`),
      flush: () => Promise.resolve(),
      readResponse: () => Promise.resolve(null),
      log: new Logger({ program: "smtpd", hostname: "mx", sinks: [() => {}] }),
    };
    return { s, replies };
  };
  await t.step("smtpd_tls_auth_only: offered and accepted with TLS only", async () => {
    const ctx = authContext(config(["smtpd_tls_auth_only = yes"]), new PasswordBackend(check))!;
    assertEquals(await authKeywords(ctx, fake(false).s), []);
    const tls = fake(true);
    assertEquals(await authKeywords(ctx, tls.s), ["AUTH PLAIN LOGIN"]);
    assert(await authCommand(ctx, tls.s, `PLAIN ${plain("alice", "secret")}`));
    assertEquals(tls.s.sasl, { username: "alice", method: "PLAIN" });
  });
  await t.step("noplaintext without TLS, smtpd_sasl_tls_security_options with it", async () => {
    const ctx = authContext(
      config([
        "smtpd_sasl_security_options = noanonymous, noplaintext",
        "smtpd_sasl_tls_security_options = noanonymous",
      ]),
      new PasswordBackend(check),
    )!;
    const plainText = fake(false);
    assertEquals(await authKeywords(ctx, plainText.s), []);
    assert(!(await authCommand(ctx, plainText.s, `PLAIN ${plain("alice", "secret")}`)));
    assertEquals(plainText.replies, ["503 5.5.1 Error: authentication not enabled"]);
    assertEquals(await authKeywords(ctx, fake(true).s), ["AUTH PLAIN LOGIN"]);
  });
  await t.step("smtpd_sasl_mechanism_filter with the passwd-file backend", async () => {
    const ctx = authContext(
      config(["smtpd_sasl_mechanism_filter = !plain, static:rest"]),
      new PasswordBackend(check),
    )!;
    const f = fake(false);
    assertEquals(await authKeywords(ctx, f.s), ["AUTH LOGIN"]);
    assert(!(await authCommand(ctx, f.s, `PLAIN ${plain("alice", "secret")}`)));
    assertEquals(f.replies, [
      "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
    ]);
    assertEquals(f.s.sasl, null);
    const none = authContext(
      config(["smtpd_sasl_mechanism_filter = cram-md5"]),
      new PasswordBackend(check),
    )!;
    const logged: string[] = [];
    const g = fake(false);
    g.s.log = new Logger({ program: "smtpd", hostname: "mx", sinks: [(l) => logged.push(l)] });
    assertEquals(await authKeywords(none, g.s), []);
    assertMatch(
      logged.join(""),
      /error: smtpd_sasl_mechanism_filter discards all mechanisms in 'PLAIN LOGIN'/,
    );
  });
  await t.step("Received protocol: ESMTPS, ESMTPSA; SMTP stays SMTP", () => {
    assertEquals(receivedProtocol("ESMTP", true, false), "ESMTPS");
    assertEquals(receivedProtocol("ESMTP", true, true), "ESMTPSA");
    assertEquals(receivedProtocol("ESMTP", false, true), "ESMTPA");
    assertEquals(receivedProtocol("SMTP", true, true), "SMTP");
  });
});
