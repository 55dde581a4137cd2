/**
 * Differential test of smtpd's DNS-based restrictions: a real Postfix 3.7
 * and a Postwarden instance get the same main.cf and the same scripted
 * SMTP sessions, and must give the same replies and the same reject and
 * "RBL lookup error" log lines (queue ids and program names aside).
 *
 * Both servers must ask the same DNS: a small authoritative server
 * (tests/helpers/dns_server.ts) on 127.0.N.153:53. Postfix honours only
 * /etc/resolv.conf, and the machine's must not change, so the test runs
 * itself again (with RESTRICTIONS_DNS_INNER=1) in a private mount namespace
 * (`unshare -m`) where a resolv.conf naming that server is bind-mounted
 * over /etc/resolv.conf; everything started inside (the DNS server, both
 * MTAs) sees it, nothing outside does. That needs root.
 *
 * Covered: reject_unknown_helo_hostname (numeric HELO, address literals,
 * NXDOMAIN, a name with only MX, a null MX, a time-out with
 * defer_if_permit and with defer), reject_unknown_sender_domain and
 * reject_unknown_recipient_domain (MX, A only, NXDOMAIN, null MX, address
 * literal, our own domain, a time-out), reject_rbl_client with and without
 * TXT, with a reply filter that does not match, a list that times out,
 * rbl_reply_maps templates with session attributes, reject_rhsbl_helo,
 * reject_rhsbl_sender and permit_dnswl_client, smtpd_end_of_data_restrictions,
 * and SERVFAIL and REFUSED answers (Deno.resolveDns reports them like
 * NXDOMAIN; lib/dns confirms each negative answer over TCP, so the test
 * name server serves TCP too) to reject_unknown_helo_hostname,
 * reject_unknown_sender_domain, reject_unknown_recipient_domain and
 * permit_dnswl_client. Not covered here (unit tests and dialogs do them):
 * a SERVFAIL from a deny list (not rejected either way, but Postfix logs
 * "RBL lookup error" and we do not: dnsbl.ts says why), client name
 * lookups other than /etc/hosts' localhost, IPv6 clients.
 * reject_unauth_pipelining is compared with a session sent in one write.
 *
 * Without Postfix, unshare or root the test is skipped loudly; under
 * CI=true it fails instead.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { resolvNamespaceTest } from "../helpers/namespace.ts";
import { comparableReplies, smtpReplies } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { SmtpClient } from "../helpers/smtp_client.ts";
import type { Zone } from "../helpers/dns_server.ts";

const INNER = "RESTRICTIONS_DNS_INNER";
/**
 * The test name server's address (port 53: resolv.conf has no port). The
 * mount namespace does not separate ports, so each run picks its own
 * loopback address, and a second run at the same time does not collide;
 * the outer run hands it to the inner one.
 */
const NAMESERVER = Deno.env.get("RESTRICTIONS_DNS_NAMESERVER") ??
  `127.0.${1 + Math.floor(Math.random() * 250)}.153`;

/** What the test's name server knows. 127.0.0.1 is the client of every session. */
const ZONE: Zone = {
  names: {
    "ok.test": { A: ["192.0.2.1"], MX: [[10, "mx.ok.test"]] },
    "mx.ok.test": { A: ["192.0.2.2"] },
    "aonly.test": { A: ["192.0.2.3"] },
    "mxonly.test": { MX: [[10, "mx.ok.test"]] },
    "nullmx.test": { MX: [[0, "."]] },
    "nodata.test": { TXT: ["no address records"] },
    // Deny lists: the client, listed with and without a reason.
    "1.0.0.127.bl.test": { A: ["127.0.0.2"], TXT: ["listed; see http://bl.test/?127.0.0.1"] },
    "1.0.0.127.bare.test": { A: ["127.0.0.4"] },
    "1.0.0.127.nomatch.test": { A: ["127.0.0.9"], TXT: ["only 9"] },
    "1.0.0.127.wl.test": { A: ["127.0.0.10"] },
    // Domain lists: a HELO name and a sender domain.
    "bad.example.dbl.test": { A: ["127.0.1.2"], TXT: ["bad helo"] },
    "spam.example.dbl.test": { A: ["127.0.1.2"], TXT: ["spam domain", "second record"] },
    "localhost.dbl.test": { A: ["127.0.1.2"] },
    "rcpt.example.dbl.test": { A: ["127.0.1.3"], TXT: ["bad recipient domain"] },
    "localhost.wl.test": { A: ["127.0.1.10"] },
    // check_*_{mx,ns,a}_access: MX hosts by name and by address, name servers of a parent.
    "mxbad.test": { MX: [[10, "mx.bad.test"]] },
    "mx.bad.test": { A: ["192.0.2.66"] },
    "ipmx.test": { MX: [[10, "192.0.2.77"]] },
    "lame.test": { MX: [[10, "nohost.test"]] },
    "nsdom.test": { NS: ["ns1.nsdom.test"], A: ["192.0.2.50"] },
    "ns1.nsdom.test": { A: ["192.0.2.53"] },
  },
  silent: ["timeout.test"],
  servfail: ["servfail.test"],
  refused: ["refused.test"],
};

/** Settings of both servers; the client (127.0.0.1) is outside mynetworks. */
const COMMON = [
  "myhostname = mx.test.example",
  "mydestination = $myhostname, localhost",
  "mynetworks = 192.0.2.0/24",
  "local_recipient_maps =",
  "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
  "smtpd_error_sleep_time = 0",
  "smtpd_soft_error_limit = 10000",
  "smtpd_hard_error_limit = 10000",
  // reject_unauth_pipelining is compared, not Postfix 3.9's disconnect (Postwarden's default).
  "smtpd_forbid_unauth_pipelining = no",
];

interface Scenario {
  name: string;
  mainCf: string[];
  commands: string[];
  /** Send every command in one write after the greeting (improper pipelining). */
  pipelined?: boolean;
  /** A reply Postfix must give, so that the scenario tests what it says. */
  expect?: RegExp;
}

/** The greeting, then all commands in one write; every reply line until the server closes. */
async function pipelinedReplies(port: number, commands: string[]): Promise<string[]> {
  const conn = await SmtpClient.connect(port);
  const lines: string[] = [];
  try {
    lines.push(...await conn.reply());
    await conn.send(commands.map((c) => c + "\r\n").join(""));
    for (const r of await conn.repliesUntilClosed()) lines.push(...r);
  } finally {
    conn.close();
  }
  // Final reply lines only; the greeting and HELO/EHLO/QUIT name the server.
  return lines.filter((l) => /^\d{3} /.test(l)).map((l, i) =>
    i === 0 || /^(250|221) [^0-9]/.test(l) ? l.slice(0, 3) : l
  );
}

const heloCase = (helo: string) => [
  `EHLO ${helo}`,
  "MAIL FROM:<a@ok.test>",
  "RCPT TO:<root@localhost>",
  "RSET",
];

/** Reply templates (a file: main.cf would expand their $names at start). */
const RBL_REPLIES = "dbl.test $rbl_code 5.7.9 $rbl_class <$rbl_what> via $rbl_domain; " +
  "client=$client_address name=$client_name helo=$helo_name " +
  "sender=$sender_name/$sender_domain rcpt=$recipient reason=$rbl_reason\n" +
  "bare.test $rbl_code $no_such_macro\n";

/** The scenarios; `replies` is the rbl_reply_maps table of RBL_REPLIES. */
const scenarios = (replies: string): Scenario[] => [
  {
    name: "reject_unknown_helo_hostname",
    expect: /^450 4\.7\.1 <nx\.invalid>: Helo command rejected: Host not found$/,
    mainCf: ["smtpd_helo_restrictions = reject_unknown_helo_hostname"],
    commands: [
      ...[
        "1.2.3.4",
        "[1.2.3.4]",
        "[1.2.3.999]",
        "[IPv6:2001:db8::1]",
        "nx.invalid",
        "ok.test",
        "mxonly.test",
        "nullmx.test",
        "nodata.test",
        "bad..name",
        "x.timeout.test",
      ].flatMap(heloCase),
      "QUIT",
    ],
  },
  {
    name: "reject_unknown_helo_hostname, tempfail action defer",
    mainCf: [
      "smtpd_helo_restrictions = reject_unknown_helo_hostname",
      "unknown_helo_hostname_tempfail_action = defer",
    ],
    commands: [...heloCase("x.timeout.test"), "QUIT"],
  },
  {
    name: "reject_unknown_sender_domain and reject_unknown_recipient_domain",
    expect:
      /^550 5\.7\.27 <a@nullmx\.test>: Sender address rejected: Domain nullmx\.test does not accept mail \(nullMX\)$/,
    mainCf: [
      "smtpd_sender_restrictions = reject_unknown_sender_domain",
      "smtpd_relay_restrictions = permit",
      "smtpd_recipient_restrictions = reject_unknown_recipient_domain, reject_unauth_destination",
    ],
    commands: [
      "EHLO client.example",
      ...[
        "a@nx.invalid",
        "a@nullmx.test",
        "a@ok.test",
        "a@aonly.test",
        "a@mxonly.test",
        "a@nodata.test",
        "a@[192.0.2.9]",
        "a@localhost",
        "a@x.timeout.test",
        "",
      ].flatMap((s) => [`MAIL FROM:<${s}>`, "RCPT TO:<root@localhost>", "RSET"]),
      "MAIL FROM:<a@ok.test>",
      ...[
        "x@nx.invalid",
        "x@nullmx.test",
        "x@aonly.test",
        "x@[192.0.2.9]",
        "x@x.timeout.test",
      ].map((r) => `RCPT TO:<${r}>`),
      "QUIT",
    ],
  },
  {
    name: "unknown_address_tempfail_action = defer, unknown_address_reject_code = 550",
    mainCf: [
      "smtpd_sender_restrictions = reject_unknown_sender_domain",
      "unknown_address_tempfail_action = defer",
      "unknown_address_reject_code = 550",
    ],
    commands: [
      "EHLO client.example",
      ...["a@nx.invalid", "a@x.timeout.test"].flatMap((s) => [
        `MAIL FROM:<${s}>`,
        "RCPT TO:<root@localhost>",
        "RSET",
      ]),
      "QUIT",
    ],
  },
  {
    name: "SERVFAIL and REFUSED: 450 from reject_unknown_helo_hostname, never 5xx",
    expect: /^450 4\.7\.1 <x\.servfail\.test>: Helo command rejected: Host not found$/,
    mainCf: [
      "smtpd_helo_restrictions = reject_unknown_helo_hostname",
      "unknown_hostname_reject_code = 550",
    ],
    commands: [...["x.servfail.test", "x.refused.test", "nx.invalid"].flatMap(heloCase), "QUIT"],
  },
  {
    name: "SERVFAIL and REFUSED: 450 from reject_unknown_sender/recipient_domain, never 5xx",
    expect: /^450 4\.1\.8 <a@x\.servfail\.test>: Sender address rejected: Domain not found$/,
    mainCf: [
      "smtpd_sender_restrictions = reject_unknown_sender_domain",
      "smtpd_relay_restrictions = permit",
      "smtpd_recipient_restrictions = reject_unknown_recipient_domain, reject_unauth_destination",
      "unknown_address_reject_code = 550",
    ],
    commands: [
      "EHLO client.example",
      ...["a@x.servfail.test", "a@x.refused.test", "a@nx.invalid"].flatMap((s) => [
        `MAIL FROM:<${s}>`,
        "RCPT TO:<root@localhost>",
        "RSET",
      ]),
      "MAIL FROM:<a@ok.test>",
      ...["x@x.servfail.test", "x@x.refused.test", "x@nx.invalid"].map((r) => `RCPT TO:<${r}>`),
      "QUIT",
    ],
  },
  {
    name: "SERVFAIL: unknown_address_tempfail_action = defer",
    mainCf: [
      "smtpd_sender_restrictions = reject_unknown_sender_domain",
      "unknown_address_tempfail_action = defer",
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<a@x.servfail.test>",
      "RCPT TO:<root@localhost>",
      "QUIT",
    ],
  },
  {
    name: "SERVFAIL from an allow list: a later reject becomes 450",
    expect: /^450 4\.7\.1 <127\.0\.0\.1>: Client host rejected: Service unavailable$/,
    mainCf: ["smtpd_client_restrictions = permit_dnswl_client servfail.test, reject"],
    commands: [...heloCase("client.example"), "QUIT"],
  },
  {
    name: "reject_rbl_client: a filter that does not match, a list that times out, TXT",
    expect:
      /^554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.1\] blocked using bl\.test; listed; see http:\/\/bl\.test\/\?127\.0\.0\.1$/,
    mainCf: [
      "smtpd_client_restrictions = reject_rbl_client nomatch.test=127.0.0.[2..8], " +
      "reject_rbl_client timeout.test, reject_rbl_client bl.test",
    ],
    commands: [...heloCase("client.example"), "QUIT"],
  },
  {
    name: "reject_rbl_client without TXT, maps_rbl_reject_code",
    mainCf: [
      "smtpd_client_restrictions = reject_rbl_client bare.test=127.0.0.[1;3..5]",
      "maps_rbl_reject_code = 550",
    ],
    commands: [...heloCase("client.example"), "QUIT"],
  },
  {
    name: "rbl_reply_maps templates, reject_rhsbl_helo, reject_rhsbl_sender",
    mainCf: [
      "smtpd_helo_restrictions = reject_rhsbl_helo dbl.test",
      "smtpd_sender_restrictions = reject_rhsbl_sender dbl.test",
      `rbl_reply_maps = ${replies}`,
    ],
    commands: [
      ...heloCase("bad.example"),
      "EHLO good.example",
      "MAIL FROM:<x@spam.example>",
      "RCPT TO:<root@localhost>",
      "RSET",
      "MAIL FROM:<x@[127.0.0.1]>",
      "RCPT TO:<root@localhost>",
      "QUIT",
    ],
  },
  {
    name: "permit_dnswl_client before reject, and a list that does not name the client",
    mainCf: [
      "smtpd_client_restrictions = permit_dnswl_client nolist.test, permit_dnswl_client wl.test, " +
      "reject",
    ],
    commands: [
      ...heloCase("client.example"),
      "MAIL FROM:<a@ok.test>",
      "RCPT TO:<someone@outside.example>",
      "QUIT",
    ],
  },
  {
    name: "reject_rhsbl_client, reject_rhsbl_reverse_client, reject_rhsbl_recipient",
    mainCf: [
      "smtpd_client_restrictions = reject_rhsbl_reverse_client nolist.test, " +
      "reject_rhsbl_client dbl.test",
      "smtpd_recipient_restrictions = reject_rhsbl_recipient dbl.test",
      "smtpd_relay_restrictions = permit",
      "smtpd_recipient_restrictions = reject_rhsbl_recipient dbl.test, reject_unauth_destination",
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<a@ok.test>",
      "RCPT TO:<x@rcpt.example>",
      "QUIT",
    ],
  },
  {
    name: "permit_rhswl_client, warn_if_reject, default_rbl_reply, a bad template",
    mainCf: [
      "smtpd_client_restrictions = warn_if_reject reject_rbl_client bl.test, " +
      "permit_rhswl_client wl.test, reject",
      "smtpd_sender_restrictions = reject_rbl_client bare.test",
      "default_rbl_reply = $rbl_code 5.7.0 listed by $rbl_domain: $rbl_what",
      `rbl_reply_maps = ${replies}`,
    ],
    commands: [
      ...heloCase("client.example"),
      "QUIT",
    ],
  },
  {
    name: "reject_unknown_client_hostname, reject_unknown_reverse_client_hostname, " +
      "check_reverse_client_hostname_access",
    mainCf: [
      "smtpd_client_restrictions = reject_unknown_client_hostname, " +
      "reject_unknown_reverse_client_hostname, " +
      "check_reverse_client_hostname_access inline:{ {localhost=DUNNO} }, " +
      "check_reverse_client_hostname_access inline:{ {127.0.0.1=REJECT reverse says no} }",
    ],
    commands: [...heloCase("client.example"), "QUIT"],
  },
  {
    name: "check_reverse_client_hostname_access may not return OK",
    mainCf: [
      "smtpd_client_restrictions = check_reverse_client_hostname_access inline:{ {localhost=OK} }",
    ],
    commands: [...heloCase("client.example"), "QUIT"],
  },
  {
    name: "check_sender_mx_access, check_sender_ns_access, check_sender_a_access",
    expect: /^554 5\.7\.1 <a@deep\.nsdom\.test>: Sender address rejected: bad ns$/,
    mainCf: [
      "smtpd_sender_restrictions = " +
      "check_sender_mx_access inline:{ {mx.bad.test=REJECT bad mx host}, " +
      "{192.0.2.77=REJECT mx by address}, {localhost=DUNNO} }, " +
      "check_sender_ns_access inline:{ {ns1.nsdom.test=REJECT bad ns} }, " +
      "check_sender_a_access inline:{ {192.0.2.3=REJECT a record}, {192.0.3=REJECT a net} }",
    ],
    commands: [
      "EHLO client.example",
      ...[
        "a@mxbad.test",
        "a@ipmx.test",
        "a@aonly.test",
        "a@deep.nsdom.test",
        "a@lame.test",
        "a@nullmx.test",
        "a@[192.0.2.77]",
        "a@[192.0.2.1]",
        "a@x.timeout.test",
        "",
      ].flatMap((s) => [`MAIL FROM:<${s}>`, "RCPT TO:<root@localhost>", "RSET"]),
      "QUIT",
    ],
  },
  {
    name: "check_helo_a_access, check_helo_mx_access, check_helo_ns_access",
    mainCf: [
      "smtpd_helo_restrictions = check_helo_a_access inline:{ {192.0.2.1=REJECT helo a} }, " +
      "check_helo_mx_access inline:{ {mx.ok.test=REJECT helo mx} }, " +
      "check_helo_ns_access inline:{ {192.0.2.53=REJECT helo ns} }",
    ],
    commands: [
      ...[
        "ok.test",
        "mxonly.test",
        "sub.nsdom.test",
        "[192.0.2.1]",
        "192.0.2.1",
        "client.example",
        "bad..name",
      ].flatMap(heloCase),
      "QUIT",
    ],
  },
  {
    name: "check_client_*_access and check_reverse_client_hostname_*_access (localhost)",
    mainCf: [
      "smtpd_client_restrictions = check_client_ns_access inline:{ {localhost=REJECT} }, " +
      "check_client_a_access inline:{ {127.0.0.1=DUNNO} }, " +
      "check_reverse_client_hostname_a_access inline:{ {127.0.0=DUNNO} }, " +
      "check_client_mx_access inline:{ {127.0.0.1=REJECT client mx} }",
    ],
    commands: [...heloCase("client.example"), "QUIT"],
  },
  {
    name: "check_*_mx_access may not return OK; recipient checks",
    mainCf: [
      "smtpd_sender_restrictions = check_sender_mx_access inline:{ {mx.ok.test=OK} }",
      "smtpd_relay_restrictions = permit",
      "smtpd_recipient_restrictions = check_recipient_mx_access inline:{ {mx.bad.test=REJECT rcpt mx} }, " +
      "check_recipient_ns_access inline:{ {nsdom.test=REJECT rcpt ns} }, " +
      "check_recipient_a_access inline:{ {192.0.2.50=REJECT rcpt a} }, reject_unauth_destination",
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<a@ok.test>",
      "RCPT TO:<root@localhost>",
      "RSET",
      "MAIL FROM:<a@aonly.test>",
      ...["x@mxbad.test", "x@deep.nsdom.test", "x@nsdom.test", "x@[192.0.2.9]"].map((r) =>
        `RCPT TO:<${r}>`
      ),
      "QUIT",
    ],
  },
  {
    name: "smtpd_end_of_data_restrictions",
    mainCf: [
      "smtpd_end_of_data_restrictions = check_sender_access inline:{ {spam@ok.test=REJECT no thanks} }, " +
      "reject_rhsbl_sender dbl.test",
    ],
    commands: [
      "EHLO client.example",
      "MAIL FROM:<spam@ok.test>",
      "RCPT TO:<root@localhost>",
      "DATA",
      "Subject: x\r\n\r\nbody\r\n.",
      "MAIL FROM:<x@spam.example>",
      "RSET",
      "MAIL FROM:<x@spam.example>",
      "RCPT TO:<root@localhost>",
      "RCPT TO:<postmaster@localhost>",
      "DATA",
      "Subject: y\r\n\r\nbody\r\n.",
      "RSET",
      "QUIT",
    ],
  },
  {
    name: "reject_unauth_pipelining: HELO with the rest of the session in one write",
    mainCf: ["smtpd_data_restrictions = reject_unauth_pipelining"],
    commands: [
      "HELO client.example",
      "MAIL FROM:<a@ok.test>",
      "RCPT TO:<root@localhost>",
      "DATA",
      "QUIT",
    ],
    pipelined: true,
    expect: /^503 5\.5\.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining$/,
  },
  {
    name: "reject_unauth_pipelining: ESMTP may pipeline MAIL and RCPT",
    mainCf: ["smtpd_recipient_restrictions = reject_unauth_pipelining"],
    commands: ["EHLO client.example", "MAIL FROM:<a@ok.test>", "RCPT TO:<root@localhost>", "QUIT"],
    expect: /^250 2\.1\.5 Ok$/,
  },
  {
    name: "smtpd_delay_reject = no: a deny list at connect",
    mainCf: ["smtpd_delay_reject = no", "smtpd_client_restrictions = reject_rbl_client bl.test"],
    commands: ["EHLO client.example", "MAIL FROM:<a@ok.test>", "QUIT"],
  },
];

/** Reject lines and RBL warnings, from the queue id or "warning:" on, without the id. */
function interesting(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    const m = /: (?:[0-9A-Za-z]+|NOQUEUE): (reject: .*)$/.exec(l) ??
      /: (?:[0-9A-Za-z]+|NOQUEUE): (reject_warning: .*)$/.exec(l) ??
      /: (improper command pipelining .*)$/.exec(l) ??
      /: warning: (\S+: RBL lookup error: .*|restriction .*|Unable to look up .*|this is not allowed.*|use DUNNO.*|unknown macro name .*|rbl_reject_reply: .*)$/
        .exec(l);
    return m ? [m[1]] : [];
  });
}

/** Inside the namespace: the name server, then each scenario against both servers. */
async function inner(t: Deno.TestContext): Promise<void> {
  const { startDnsServer } = await import("../helpers/dns_server.ts");
  const { onBoth } = await import("../helpers/differential.ts");
  const dns = startDnsServer(NAMESERVER, 53, ZONE);
  const dir = await Deno.makeTempDir({ prefix: "restrictions-dns-maps-" });
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(`${dir}/rbl_replies`, RBL_REPLIES, { mode: 0o644 });
  try {
    for (const s of scenarios(`texthash:${dir}/rbl_replies`)) {
      const mainCf = [...COMMON, ...s.mainCf].join("\n");
      const { theirs: [theirs, theirLog], ours: [ours, ourLog] } = await onBoth(
        mainCf,
        async (server) =>
          [
            s.pipelined
              ? await pipelinedReplies(server.port, s.commands)
              : await smtpReplies(server.port, s.commands),
            await waitForLog(server, "quit=1"),
          ] as const,
        { label: s.name },
      );
      await t.step(`${s.name}: same replies as Postfix`, () => {
        if (s.expect) assert(theirs.some((l) => s.expect!.test(l)), theirs.join("\n"));
        if (s.pipelined) assertEquals(ours, theirs);
        else {
          assertEquals(
            comparableReplies(s.commands, ours),
            comparableReplies(s.commands, theirs),
          );
        }
      });
      await t.step(`${s.name}: same reject and RBL log lines`, () => {
        assertEquals(interesting(ourLog), interesting(theirLog));
      });
    }
  } finally {
    dns.close();
    await Deno.remove(dir, { recursive: true });
  }
}

// One try, one second: a silent name fails fast in both resolvers.
resolvNamespaceTest({
  name: "DNS restrictions: the same replies as Postfix, against one test name server",
  url: import.meta.url,
  inner,
  innerVar: INNER,
  nameserver: NAMESERVER,
  nameserverVar: "RESTRICTIONS_DNS_NAMESERVER",
  peers: [POSTFIX],
});
