/**
 * Tests of TLSA matching with certificates made by openssl(1) at test
 * time (EC P-256, fast): a root CA, an intermediate CA, leaves with DNS
 * names, with a wildcard, with only a common name, and one signed by a
 * certificate that is no CA. Without openssl the tests skip loudly (and
 * fail under CI=true). The expected digests come from node:crypto's own
 * export of each public key, so the DER reader is checked against it.
 * The last step takes the chain from a real TLS handshake (node:tls
 * against Deno.listenTls on loopback).
 */
import * as tls from "node:tls";
import { createHash, X509Certificate } from "node:crypto";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { havePeer, run } from "../../tests/helpers/peers.ts";
import { CertificateError, readCertificate } from "./cert.ts";
import { matchTlsa, peerChain } from "./match.ts";
import type { TlsaRecord } from "./records.ts";

interface Made {
  pem: string;
  der: Uint8Array;
  spki: Uint8Array;
  certFile: string;
  keyFile: string;
}

async function openssl(args: string[]): Promise<void> {
  const r = await run("openssl", args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A certificate for `cn`, self-signed or signed by `issuer`, valid for two days. */
async function issue(
  dir: string,
  id: string,
  opts: { cn: string; dns?: string[]; ca?: boolean; issuer?: Made },
): Promise<Made> {
  const keyFile = `${dir}/${id}.key`;
  const certFile = `${dir}/${id}.pem`;
  await openssl([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    keyFile,
  ]);
  const cnf = `${dir}/${id}.cnf`;
  await Deno.writeTextFile(
    cnf,
    "[req]\ndistinguished_name = dn\nx509_extensions = ext\n[dn]\n[ext]\n" +
      `basicConstraints = critical, CA:${opts.ca ? "TRUE" : "FALSE"}\n` +
      (opts.dns ? `subjectAltName = ${opts.dns.map((d) => `DNS:${d}`).join(", ")}\n` : ""),
  );
  const req = ["req", "-config", cnf, "-key", keyFile, "-subj", `/CN=${opts.cn}`];
  const days = ["-days", "2", "-set_serial", `${crypto.getRandomValues(new Uint32Array(1))[0]}`];
  if (opts.issuer) {
    await openssl([...req, "-new", "-out", `${dir}/${id}.csr`]);
    await openssl([
      "x509",
      "-req",
      "-in",
      `${dir}/${id}.csr`,
      "-CA",
      opts.issuer.certFile,
      "-CAkey",
      opts.issuer.keyFile,
      ...days,
      "-extfile",
      cnf,
      "-extensions",
      "ext",
      "-out",
      certFile,
    ]);
  } else {
    await openssl([...req, "-x509", "-new", ...days, "-out", certFile]);
  }
  const pem = await Deno.readTextFile(certFile);
  const x = new X509Certificate(pem);
  return {
    pem,
    der: new Uint8Array(x.raw),
    spki: new Uint8Array(x.publicKey.export({ type: "spki", format: "der" })),
    certFile,
    keyFile,
  };
}

const sha = (alg: "sha256" | "sha512", b: Uint8Array) =>
  new Uint8Array(createHash(alg).update(b).digest());
const rec = (
  usage: number,
  selector: number,
  matchingType: number,
  data: Uint8Array,
): TlsaRecord => ({
  usage,
  selector,
  matchingType,
  data,
});
const DAY = 86_400_000;

Deno.test({
  name: "lib/dane matchTlsa with real certificates",
  ignore: !havePeer("/usr/bin/openssl"),
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    try {
      const root = await issue(dir, "root", { cn: "Test DANE Root", ca: true });
      const inter = await issue(dir, "inter", {
        cn: "Test DANE Issuing CA",
        ca: true,
        issuer: root,
      });
      const leaf = await issue(dir, "leaf", {
        cn: "ignored.example.test",
        dns: ["mx.example.test", "*.wild.example.test"],
        issuer: inter,
      });
      const direct = await issue(dir, "direct", {
        cn: "x",
        dns: ["mx.example.test"],
        issuer: root,
      });
      const cnOnly = await issue(dir, "cn", { cn: "cn.example.test", issuer: root });
      const notCa = await issue(dir, "notca", {
        cn: "Not A CA",
        dns: ["nca.example.test"],
        issuer: root,
      });
      const underNotCa = await issue(dir, "under", {
        cn: "u",
        dns: ["mx.example.test"],
        issuer: notCa,
      });
      const stranger = await issue(dir, "stranger", {
        cn: "stranger.test",
        dns: ["mx.example.test"],
      });
      const chain = [leaf.der, inter.der, root.der];
      const mx = ["mx.example.test"];

      await t.step("the DER reader: SPKI as node:crypto exports it, DNS names, CN", () => {
        const c = readCertificate(leaf.der);
        assertEquals(c.spki, leaf.spki);
        assertEquals(c.dnsNames, ["mx.example.test", "*.wild.example.test"]);
        assertEquals(c.commonNames, ["ignored.example.test"]);
        assertEquals(readCertificate(cnOnly.der).dnsNames, []);
      });

      await t.step("DANE-EE: 3 1 1, 3 0 1, 3 1 2, 3 0 0, 3 1 0 match the leaf", () => {
        for (
          const r of [
            rec(3, 1, 1, sha("sha256", leaf.spki)),
            rec(3, 0, 1, sha("sha256", leaf.der)),
            rec(3, 1, 2, sha("sha512", leaf.spki)),
            rec(3, 0, 0, leaf.der),
            rec(3, 1, 0, leaf.spki),
          ]
        ) {
          assertEquals(matchTlsa([r], chain, mx), { ok: true, record: r, depth: 0 });
        }
      });

      await t.step("DANE-EE checks no name, no date, no issuer", () => {
        const r = rec(3, 1, 1, sha("sha256", stranger.spki));
        const later = new Date(Date.now() + 30 * DAY);
        assertEquals(matchTlsa([r], [stranger.der], ["other.test"], later).ok, true);
      });

      await t.step(
        "DANE-EE: wrong digests, the wrong selector, other certificates do not match",
        () => {
          const wrong = sha("sha256", leaf.spki).map((b, i) => i === 31 ? b ^ 1 : b);
          for (
            const r of [
              rec(3, 1, 1, wrong),
              rec(3, 0, 1, sha("sha256", leaf.spki)), // SPKI digest under selector 0
              rec(3, 1, 1, sha("sha256", inter.spki)), // an EE record cannot match the issuer
              rec(3, 1, 2, sha("sha512", stranger.spki)),
              rec(3, 0, 0, leaf.der.subarray(0, leaf.der.length - 1)),
            ]
          ) {
            const m = matchTlsa([r], chain, mx);
            assertEquals(m.ok, false);
          }
        },
      );

      await t.step("unusable records never match: PKIX usages, unknown types, bad lengths", () => {
        for (
          const r of [
            rec(1, 1, 1, sha("sha256", leaf.spki)),
            rec(0, 1, 1, sha("sha256", root.spki)),
            rec(3, 2, 1, sha("sha256", leaf.spki)),
            rec(3, 1, 3, sha("sha256", leaf.spki)),
            rec(3, 1, 1, sha("sha256", leaf.spki).subarray(0, 31)),
            rec(3, 1, 2, sha("sha256", leaf.spki)),
          ]
        ) {
          assertEquals(matchTlsa([r], chain, mx), { ok: false, reason: "no usable TLSA records" });
        }
      });

      await t.step("DANE-TA: 2 1 1 and 2 0 1 of the root, 2 0 2 of the intermediate", () => {
        const root211 = rec(2, 1, 1, sha("sha256", root.spki));
        assertEquals(matchTlsa([root211], chain, mx), { ok: true, record: root211, depth: 2 });
        assertEquals(matchTlsa([rec(2, 0, 1, sha("sha256", root.der))], chain, mx).ok, true);
        const inter202 = rec(2, 0, 2, sha("sha512", inter.der));
        assertEquals(matchTlsa([inter202], chain, mx), { ok: true, record: inter202, depth: 1 });
        // The chain order after the leaf does not matter.
        assertEquals(matchTlsa([root211], [leaf.der, root.der, inter.der], mx).ok, true);
        // Two levels: leaf and root.
        assertEquals(matchTlsa([root211], [direct.der, root.der], mx).ok, true);
      });

      await t.step("DANE-TA: a 2 1 0 key may stand for a root the server leaves out", () => {
        const key = rec(2, 1, 0, root.spki);
        assertEquals(matchTlsa([key], [leaf.der, inter.der], mx), {
          ok: true,
          record: key,
          depth: 2,
        });
        assertEquals(matchTlsa([key], [direct.der], mx), { ok: true, record: key, depth: 1 });
        // Only Full: a digest cannot verify a signature.
        assertEquals(
          matchTlsa([rec(2, 1, 1, sha("sha256", root.spki))], [direct.der], mx).ok,
          false,
        );
        assertEquals(matchTlsa([rec(2, 1, 0, stranger.spki)], [direct.der], mx).ok, false);
      });

      await t.step("DANE-TA does not match the leaf itself", () => {
        const m = matchTlsa([rec(2, 1, 1, sha("sha256", stranger.spki))], [stranger.der], mx);
        assertEquals(m.ok, false);
      });

      await t.step("DANE-TA: the leaf's names must match, wildcards one label deep", () => {
        const r = [rec(2, 1, 1, sha("sha256", root.spki))];
        assertEquals(matchTlsa(r, chain, ["MX.Example.Test."]).ok, true);
        assertEquals(matchTlsa(r, chain, ["other.test", "mx.example.test"]).ok, true);
        assertEquals(matchTlsa(r, chain, ["a.wild.example.test"]).ok, true);
        for (
          const names of [
            ["other.example.test"],
            ["a.b.wild.example.test"],
            ["wild.example.test"],
            [],
          ]
        ) {
          const m = matchTlsa(r, chain, names);
          assert(!m.ok && /name mismatch/.test(m.reason), JSON.stringify(m));
        }
        // The CN counts only without DNS names.
        assertEquals(matchTlsa(r, chain, ["ignored.example.test"]).ok, false);
        assertEquals(matchTlsa(r, [cnOnly.der, root.der], ["cn.example.test"]).ok, true);
      });

      await t.step("DANE-TA: an expired or not yet valid leaf fails; DANE-EE does not care", () => {
        const ta = [rec(2, 1, 1, sha("sha256", root.spki))];
        const later = new Date(Date.now() + 10 * DAY);
        const m = matchTlsa(ta, chain, mx, later);
        assert(!m.ok);
        assertMatch(m.reason, /expired .*depth 0/);
        const early = matchTlsa(ta, chain, mx, new Date(Date.now() - 10 * DAY));
        assert(!early.ok && /not yet valid/.test(early.reason));
        assertEquals(
          matchTlsa([rec(3, 1, 1, sha("sha256", leaf.spki))], chain, mx, later).ok,
          true,
        );
      });

      await t.step("DANE-TA: a certificate between leaf and anchor must be a CA", () => {
        const m = matchTlsa([rec(2, 1, 1, sha("sha256", root.spki))], [
          underNotCa.der,
          notCa.der,
          root.der,
        ], mx);
        assert(!m.ok);
        assertMatch(m.reason, /depth 1 is not a CA/);
      });

      await t.step("DANE-TA: an anchor that did not sign the chain does not match", () => {
        // The root's certificate is sent, but the leaf is self-signed by a stranger.
        const m = matchTlsa([rec(2, 1, 1, sha("sha256", root.spki))], [stranger.der, root.der], mx);
        assertEquals(m, {
          ok: false,
          reason: "no TLSA record matches the server certificate chain",
        });
      });

      await t.step("garbage certificates: a bad leaf fails, bad extras are skipped", () => {
        const junk = new Uint8Array([0x30, 0x03, 1, 2, 3]);
        const ee = rec(3, 1, 1, sha("sha256", leaf.spki));
        const m = matchTlsa([ee], [junk], mx);
        assert(!m.ok && /server certificate/.test(m.reason));
        assertEquals(matchTlsa([ee], [leaf.der, junk, inter.der], mx).ok, true);
        assertEquals(
          matchTlsa(
            [rec(2, 1, 1, sha("sha256", root.spki))],
            [leaf.der, junk, inter.der, root.der],
            mx,
          ).ok,
          true,
        );
        assertEquals(matchTlsa([ee], [], mx), {
          ok: false,
          reason: "the server sent no certificate",
        });
      });

      await t.step("hostile DER: mutated certificates only ever throw CertificateError", () => {
        let seed = 7;
        const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
        let read = 0;
        for (let i = 0; i < 3000; i++) {
          const m = i < leaf.der.length ? leaf.der.subarray(0, i) : leaf.der.slice();
          if (i >= leaf.der.length) {
            for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
              m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
            }
          }
          try {
            readCertificate(m);
            read++;
          } catch (e) {
            assert(e instanceof CertificateError, `${e}`);
          }
        }
        assert(read > 0);
      });

      await t.step("a real handshake: peerChain of node:tls getPeerCertificate(true)", async () => {
        const server = Deno.listenTls({
          hostname: "127.0.0.1",
          port: 0,
          cert: leaf.pem + inter.pem,
          key: await Deno.readTextFile(leaf.keyFile),
        });
        const served = (async () => {
          for await (const conn of server) {
            await conn.handshake().catch(() => {});
            conn.close();
          }
        })();
        try {
          const sock = tls.connect({
            host: "127.0.0.1",
            port: (server.addr as Deno.NetAddr).port,
            servername: "mx.example.test",
            rejectUnauthorized: false,
          });
          await new Promise((resolve, reject) => {
            sock.once("secureConnect", resolve);
            sock.once("error", reject);
          });
          const got = peerChain(sock.getPeerCertificate(true));
          sock.destroy();
          assertEquals(got, [leaf.der, inter.der]);
          assertEquals(matchTlsa([rec(2, 1, 0, root.spki)], got, mx).ok, true);
          assertEquals(matchTlsa([rec(2, 0, 1, sha("sha256", inter.der))], got, mx).ok, true);
        } finally {
          server.close();
          await served.catch(() => {});
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("lib/dane peerChain stops at a self-issued root and at MAX_CHAIN", () => {
  const root: { raw: Uint8Array; issuerCertificate?: unknown } = { raw: new Uint8Array([3]) };
  root.issuerCertificate = root;
  const leaf = {
    raw: new Uint8Array([1]),
    issuerCertificate: { raw: new Uint8Array([2]), issuerCertificate: root },
  };
  assertEquals(peerChain(leaf), [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])]);
  let long: { raw: Uint8Array; issuerCertificate?: unknown } = { raw: new Uint8Array([0]) };
  for (let i = 1; i < 50; i++) long = { raw: new Uint8Array([i]), issuerCertificate: long };
  assertEquals(peerChain(long).length, 10);
});
