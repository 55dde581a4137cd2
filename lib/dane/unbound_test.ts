/**
 * Interop with a real validating resolver: unbound on loopback serves a
 * DNSSEC-signed zone (signed here with ldns-signzone, its key the trust
 * anchor), an unsigned one, and a signed zone with one record altered
 * after signing. The resolver must say secure, insecure and fail (SERVFAIL,
 * "defer") for them, over UDP and, for an RRset too big for 1232 octets,
 * over TCP with the DO bit. Needs unbound and ldnsutils (Debian packages):
 * without them the test skips loudly, and fails under CI=true.
 */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { DnsError } from "../dns/mod.ts";
import { daneLevel, lookupTlsa } from "./level.ts";
import { dnssecResolver } from "./resolver.ts";

const PROGRAMS = ["/usr/sbin/unbound", "/usr/bin/ldns-keygen", "/usr/bin/ldns-signzone"];
const DIGEST = "0123456789abcdef".repeat(4);

async function sh(cwd: string, cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text.trim();
}

/** Writes and signs the zones, returns unbound's configuration. */
async function setUp(dir: string, port: number): Promise<string> {
  const zone = (origin: string, extra: string) =>
    `$ORIGIN ${origin}.\n$TTL 300\n` +
    `@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n` +
    `@ MX 10 mx\nmx A 192.0.2.10\n_25._tcp.mx TLSA 3 1 1 ${DIGEST}\n${extra}`;
  // Four 3 0 0 records of 400 octets do not fit in a 1232-octet UDP answer.
  const big = Array.from(
    { length: 4 },
    (_, i) => `_25._tcp.big TLSA 3 0 0 ${`0${i}`.repeat(400)}\n`,
  );
  await Deno.writeTextFile(
    `${dir}/signed.zone`,
    zone(
      "signed.test",
      `alias CNAME mx\nbogus A 192.0.2.66\nbad A 192.0.2.11\n_25._tcp.bad TLSA 3 1 1 ${DIGEST}\n` +
        big.join(""),
    ),
  );
  await Deno.writeTextFile(`${dir}/plain.zone`, zone("plain.test", ""));
  const ksk = await sh(dir, "ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "signed.test");
  const zsk = await sh(dir, "ldns-keygen", "-a", "ECDSAP256SHA256", "signed.test");
  await sh(dir, "ldns-signzone", "-f", `${dir}/signed.zone.signed`, `${dir}/signed.zone`, ksk, zsk);
  // An address and a TLSA record changed after signing: their signatures fail (bogus).
  const signed = await Deno.readTextFile(`${dir}/signed.zone.signed`);
  const altered = signed
    .replace(/^(bogus\.signed\.test\.\s+\d+\s+IN\s+A\s+)192\.0\.2\.66$/m, "$1192.0.2.99")
    .replace(/^(_25\._tcp\.bad\.signed\.test\.\s+\d+\s+IN\s+TLSA\s+3 1 1 )0/m, "$1f");
  assert(altered.split("\n").filter((l, i) => l !== signed.split("\n")[i]).length === 2);
  await Deno.writeTextFile(`${dir}/signed.zone.signed`, altered);
  const authZone = (name: string, file: string) =>
    `auth-zone:\n  name: "${name}"\n  zonefile: "${dir}/${file}"\n  for-upstream: yes\n  for-downstream: no\n`;
  return `server:
  interface: 127.0.0.1
  port: ${port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "${dir}/${ksk}.ds"
  local-zone: "test." nodefault
${authZone("signed.test", "signed.zone.signed")}${authZone("plain.test", "plain.zone")}`;
}

Deno.test({
  name: "lib/dane dnssecResolver against unbound (validating, on loopback)",
  ignore: !PROGRAMS.every(havePeer),
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    const probe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    await Deno.writeTextFile(`${dir}/unbound.conf`, await setUp(dir, port));
    const unbound = new Deno.Command("unbound", {
      args: ["-d", "-c", `${dir}/unbound.conf`],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const dns = dnssecResolver({ nameServer: { ipAddr: "127.0.0.1", port }, timeoutMs: 5000 });
    try {
      for (let i = 0;; i++) {
        try {
          await dnssecResolver({ nameServer: { ipAddr: "127.0.0.1", port }, timeoutMs: 200 })
            .a("mx.signed.test");
          break;
        } catch (e) {
          if (i > 50) throw new Error(`unbound does not answer: ${e}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }

      await t.step("a signed zone is secure, MX, A and TLSA", async () => {
        const mx = await dns.mx("signed.test");
        assertEquals([mx.records, mx.secure], [
          [{ preference: 10, exchange: "mx.signed.test" }],
          true,
        ]);
        assertEquals((await dns.a("mx.signed.test")).secure, true);
        const tlsa = await dns.tlsa("_25._tcp.mx.signed.test");
        assertEquals(tlsa.secure, true);
        assertEquals(
          tlsa.records.map((r) => [r.usage, r.selector, r.matchingType, r.data.length]),
          [
            [3, 1, 1, 32],
          ],
        );
      });

      await t.step("a secure CNAME chain gives the canonical name", async () => {
        assertEquals(await dns.a("alias.signed.test"), {
          records: ["192.0.2.10"],
          secure: true,
          name: "mx.signed.test",
        });
      });

      await t.step("an RRset over 1232 octets comes over TCP, still secure", async () => {
        const big = await dns.tlsa("_25._tcp.big.signed.test");
        assertEquals([big.records.length, big.secure], [4, true]);
      });

      await t.step("an unsigned zone is insecure", async () => {
        assertEquals((await dns.a("mx.plain.test")).secure, false);
        assertEquals((await dns.tlsa("_25._tcp.mx.plain.test")).secure, false);
      });

      await t.step("a record altered after signing is SERVFAIL (bogus): temporary", async () => {
        const e = await assertRejects(() => dns.a("bogus.signed.test"), DnsError);
        assertEquals([e.kind, e.status], ["temporary", "servfail"]);
        assertEquals((await dns.a("bad.signed.test")).secure, true);
        await assertRejects(() => dns.tlsa("_25._tcp.bad.signed.test"), DnsError);
      });

      await t.step("secure denial: NXDOMAIN and NODATA are notfound", async () => {
        const nx = await assertRejects(() => dns.tlsa("_25._tcp.none.signed.test"), DnsError);
        assertEquals([nx.kind, nx.status], ["notfound", "nxdomain"]);
        const nodata = await assertRejects(() => dns.aaaa("mx.signed.test"), DnsError);
        assertEquals([nodata.kind, nodata.status], ["notfound", "nodata"]);
      });

      await t.step("the decision end to end: dane, may, defer", async () => {
        const level = async (domain: string, host: string) => {
          const mx = await dns.mx(domain);
          const addr = await dns.a(host);
          const tlsa = await lookupTlsa(dns, host, { canonical: addr.name });
          return daneLevel({ mxSecure: mx.secure, hostSecure: addr.secure, tlsa }).level;
        };
        assertEquals(await level("signed.test", "mx.signed.test"), "dane");
        assertEquals(await level("signed.test", "alias.signed.test"), "dane");
        assertEquals(await level("plain.test", "mx.plain.test"), "may");
        assertEquals(await level("signed.test", "bad.signed.test"), "defer");
      });
    } finally {
      unbound.kill("SIGTERM");
      const status = await unbound.output();
      await Deno.remove(dir, { recursive: true });
      if (!status.success && status.signal !== "SIGTERM") {
        console.warn(new TextDecoder().decode(status.stderr));
      }
    }
  },
});
