/**
 * checkHost compared with an independent implementation: mailauth's spf()
 * (npm, in strict RFC 7208 mode) on the same DNS data, for a table of
 * cases. Skipped when mailauth cannot be loaded (not in the npm cache).
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../dns/testing.ts";
import { checkHost } from "./check.ts";

type Zone = Parameters<typeof fakeResolver>[0];
type MailauthSpf = (opts: Record<string, unknown>) => Promise<{
  status: { result: string };
  explanation?: string;
}>;

let mailauthSpf: MailauthSpf | undefined;
try {
  mailauthSpf = (await import("mailauth")).spf as unknown as MailauthSpf;
} catch {
  mailauthSpf = undefined;
}

/** A node:dns-style resolver function over the same tables, for mailauth. */
function nodeStyleResolver(zone: Zone) {
  const fail = (code: string) => Promise.reject(Object.assign(new Error(code), { code }));
  return (name: string, type: string): Promise<unknown> => {
    const table = { TXT: zone.txt, A: zone.a, AAAA: zone.aaaa, MX: zone.mx, PTR: zone.ptr }[type];
    const key = name.toLowerCase().replace(/\.$/, "");
    const v = table && Object.hasOwn(table, key) ? table[key] : undefined;
    if (v === undefined || v === "nxdomain") return fail("ENOTFOUND");
    if (v === "nodata") return fail("ENODATA");
    if (v === "servfail") return fail("ESERVFAIL");
    if (v === "timeout") return fail("ETIMEOUT");
    if (type === "MX") {
      return Promise.resolve(
        (v as { preference: number; exchange: string }[]).map((r) => ({
          exchange: r.exchange,
          priority: r.preference,
        })),
      );
    }
    return Promise.resolve(v);
  };
}

const zone: Zone = {
  txt: {
    "pass.example": [["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"]],
    "soft.example": [["v=spf1 a:mail.example.net ~all"]],
    "neutral.example": [["v=spf1 ?all"]],
    "empty.example": [["v=spf1"]],
    "split.example": [["v=spf1 ip4:192.0.2.1", " -all"]],
    "two.example": [["v=spf1 -all"], ["v=spf1 +all"]],
    "syntax.example": [["v=spf1 ip4:192.0.2.1 -all moo"]],
    "badcidr.example": [["v=spf1 ip4:192.0.2.1/33 -all"]],
    "dualcidr.example": [["v=spf1 a:mail.example.net/24//64 -all"]],
    "mx.example": [["v=spf1 mx -all"]],
    "mx11.example": [["v=spf1 mx -all"]],
    "implicit.example": [["v=spf1 mx -all"]],
    "ptr.example": [["v=spf1 ptr:example.net -all"]],
    "exists.example": [["v=spf1 exists:%{ir}.%{l1r-}.bl.example.net -all"]],
    "include.example": [["v=spf1 include:pass.example ~all"]],
    "includefail.example": [["v=spf1 include:fail.example ?all"]],
    "fail.example": [["v=spf1 -all"]],
    "includenone.example": [["v=spf1 include:nothing.example -all"]],
    "includetemp.example": [["v=spf1 include:timeout.example -all"]],
    "timeout.example": "timeout",
    "servfail.example": "servfail",
    "self.example": [["v=spf1 include:self.example -all"]],
    "redirect.example": [["v=spf1 ip4:198.51.100.1 redirect=pass.example"]],
    "redirectall.example": [["v=spf1 redirect=pass.example ?all"]],
    "redirectnone.example": [["v=spf1 redirect=nothing.example"]],
    "void.example": [["v=spf1 a:v1.example.net a:v2.example.net a:v3.example.net +all"]],
    "void2.example": [["v=spf1 a:v1.example.net a:v2.example.net +all"]],
    "limit.example": [[`v=spf1 ${Array(5).fill("a mx").join(" ")} a ip4:192.0.2.1 -all`]],
    "atlimit.example": [[`v=spf1 ${Array(5).fill("a mx").join(" ")} ip4:192.0.2.1 -all`]],
    "exp.example": [["v=spf1 -all exp=why.example"]],
    "why.example": [["%{i} is not allowed for %{d} (%{l})"]],
    "badmacro.example": [["v=spf1 exists:%{z}.example.net -all"]],
    "exponly.example": [["v=spf1 a:%{t}.example.net -all"]],
    "mapped.example": [["v=spf1 -ip4:192.0.2.7 ip6:::ffff:192.0.2.7 +all"]],
    "nxsoft.example": [["v=spf1 a:nope.example.net ~all"]],
    "helo.example": [["v=spf1 a -all"]],
    "upper.example": [["V=SPF1 IP4:192.0.2.9 -ALL"]],
    "unknownmod.example": [["v=spf1 foo=bar -all"]],
    "redirect2.example": [["v=spf1 redirect=a.example redirect=b.example"]],
    "v4only.example": [["v=spf1 a:mail4.example.net a:mail4.example.org a:mail4.example.com +all"]],
    "expmacro.example": [["v=spf1 include:expinner.example -all exp=why2.example"]],
    "expinner.example": [["v=spf1 -all exp=why.example"]],
    "why2.example": [["%{c} (%{v}) %{p} via %{h}: see http://x.example/?s=%{S}"]],
    "expredirect.example": [["v=spf1 exp=why2.example redirect=exp.example"]],
    "ptr6.example": [["v=spf1 ptr:example.net -all"]],
    "exists6.example": [["v=spf1 exists:%{v}.%{d2}.x.example.net -all"]],
    "heloexp.example": [["v=spf1 -all exp=%{l}.%{o}.exp.example.net"]],
    "postmaster.heloexp.example.exp.example.net": [["%{s} %{h}"]],
  },
  a: {
    "mail.example.net": ["192.0.2.10"],
    "mx1.example.net": ["198.51.100.10"],
    "mx12.example.net": ["198.51.100.12"],
    "ok.example.net": ["192.0.2.30"],
    "helo.example": ["192.0.2.40"],
    "3.2.0.192.strong.bl.example.net": ["127.0.0.2"],
    "mail4.example.net": ["192.0.2.50"],
    "mail4.example.org": ["192.0.2.50"],
    "mail4.example.com": ["192.0.2.50"],
    "ip6.exists6.example.x.example.net": ["127.0.0.2"],
  },
  aaaa: {
    "mail.example.net": ["2001:db8:1234::1"],
    "ok6.example.net": ["2001:db8::cb01"],
  },
  mx: {
    "mx.example": [{ preference: 10, exchange: "mx1.example.net" }],
    // Eleven hosts, the last one the client's: both say permerror. (With the client's
    // host first, mailauth says pass, having queried one address; checkHost counts the MX
    // records, as the RFC 7208 test suite's mx-limit case reads section 4.6.4.)
    "mx11.example": Array.from({ length: 11 }, (_, i) => ({
      preference: i,
      exchange: `mx${i + 2}.example.net`,
    })),
  },
  ptr: {
    "30.2.0.192.in-addr.arpa": ["ok.example.net", "bad.example.org"],
    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa": ["ok6.example.net"],
  },
};

/** [client ip, MAIL FROM, HELO]. */
const cases: [string, string, string][] = [
  ["192.0.2.1", "joe@pass.example", "h.example"],
  ["198.51.100.1", "joe@pass.example", "h.example"],
  ["2001:db8::1", "joe@pass.example", "h.example"],
  ["::ffff:192.0.2.1", "joe@pass.example", "h.example"],
  ["192.0.2.10", "joe@soft.example", "h.example"],
  ["192.0.2.11", "joe@soft.example", "h.example"],
  ["192.0.2.1", "joe@neutral.example", "h.example"],
  ["192.0.2.1", "joe@empty.example", "h.example"],
  ["192.0.2.1", "joe@split.example", "h.example"],
  ["192.0.2.1", "joe@none.example", "h.example"],
  ["192.0.2.1", "joe@two.example", "h.example"],
  ["192.0.2.1", "joe@syntax.example", "h.example"],
  ["192.0.2.1", "joe@badcidr.example", "h.example"],
  ["192.0.2.99", "joe@dualcidr.example", "h.example"],
  ["2001:db8:1234:0:ffff::1", "joe@dualcidr.example", "h.example"],
  ["2001:db8:1235::1", "joe@dualcidr.example", "h.example"],
  ["198.51.100.10", "joe@mx.example", "h.example"],
  ["198.51.100.11", "joe@mx.example", "h.example"],
  ["198.51.100.12", "joe@mx11.example", "h.example"],
  ["198.51.100.10", "joe@implicit.example", "h.example"],
  ["192.0.2.30", "joe@ptr.example", "h.example"],
  ["192.0.2.31", "joe@ptr.example", "h.example"],
  ["192.0.2.3", "strong-bad@exists.example", "h.example"],
  ["192.0.2.4", "strong-bad@exists.example", "h.example"],
  ["192.0.2.1", "joe@include.example", "h.example"],
  ["198.51.100.1", "joe@include.example", "h.example"],
  ["192.0.2.1", "joe@includefail.example", "h.example"],
  ["192.0.2.1", "joe@includenone.example", "h.example"],
  ["192.0.2.1", "joe@includetemp.example", "h.example"],
  ["192.0.2.1", "joe@timeout.example", "h.example"],
  ["192.0.2.1", "joe@servfail.example", "h.example"],
  ["192.0.2.1", "joe@self.example", "h.example"],
  ["192.0.2.1", "joe@redirect.example", "h.example"],
  ["198.51.100.1", "joe@redirect.example", "h.example"],
  ["203.0.113.1", "joe@redirect.example", "h.example"],
  ["203.0.113.1", "joe@redirectall.example", "h.example"],
  ["192.0.2.1", "joe@redirectnone.example", "h.example"],
  ["192.0.2.1", "joe@void.example", "h.example"],
  ["192.0.2.1", "joe@void2.example", "h.example"],
  ["192.0.2.1", "joe@limit.example", "h.example"],
  ["192.0.2.1", "joe@atlimit.example", "h.example"],
  ["192.0.2.5", "joe@exp.example", "h.example"],
  ["192.0.2.5", "joe@badmacro.example", "h.example"],
  ["192.0.2.5", "joe@exponly.example", "h.example"],
  ["192.0.2.7", "joe@mapped.example", "h.example"],
  ["::ffff:192.0.2.7", "joe@mapped.example", "h.example"],
  ["192.0.2.5", "joe@nxsoft.example", "h.example"],
  ["192.0.2.40", "", "helo.example"],
  ["192.0.2.41", "", "helo.example"],
  ["192.0.2.9", "joe@upper.example", "h.example"],
  ["192.0.2.9", "joe@unknownmod.example", "h.example"],
  ["192.0.2.9", "joe@redirect2.example", "h.example"],
  ["192.0.2.9", "joe@[192.0.2.9]", "h.example"],
  ["192.0.2.50", "joe@v4only.example", "h.example"],
  ["2001:db8::50", "joe@v4only.example", "h.example"],
  ["192.0.2.30", "strong-bad@expmacro.example", "h.example"],
  ["2001:db8::cb01", "strong-bad@expmacro.example", "h.example"],
  ["192.0.2.31", "strong-bad@expredirect.example", "h.example"],
  ["2001:db8::cb01", "joe@ptr6.example", "h.example"],
  ["2001:db8::cb02", "joe@ptr6.example", "h.example"],
  ["2001:db8::cb02", "joe@exists6.example", "h.example"],
  ["192.0.2.1", "", "heloexp.example"],
  ["192.0.2.1", "@heloexp.example", "h.example"],
];

Deno.test({
  name: "checkHost agrees with mailauth (strict mode) on a table of cases",
  ignore: mailauthSpf === undefined,
  async fn(t) {
    for (const [ip, sender, helo] of cases) {
      await t.step(`${ip} ${sender || "<>"}`, async () => {
        const domain = sender === "" ? helo : sender.slice(sender.lastIndexOf("@") + 1);
        const ours = await checkHost(ip, domain, sender, {
          resolver: fakeResolver(zone),
          helo,
          receivingHost: "mx.example.org",
        });
        const theirs = await mailauthSpf!({
          sender,
          ip,
          helo,
          mta: "mx.example.org",
          resolver: nodeStyleResolver(zone),
          strict: true,
        });
        assertEquals(ours.result, theirs.status.result, ours.problem);
        if (ours.result === "fail") assertEquals(ours.explanation, theirs.explanation);
      });
    }
  },
});
