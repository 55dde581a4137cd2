import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { makeTestCert } from "../../tests/helpers/tls.ts";
import { makeConfig } from "../config/mod.ts";
import { loadTlsMaterial, type MaterialIo, pemBlocks, servicesTls } from "./material.ts";
import { smtpdTlsPolicy } from "./policy.ts";

const policy = (main: string) =>
  smtpdTlsPolicy(makeConfig("/x", "compatibility_level = 3.6\nsmtpd_use_tls = yes\n" + main))
    .policy;

/** Files from a map; stat from another (default: root, 0600). */
function io(
  files: Record<string, string>,
  stats: Record<string, [number, number]> = {},
): MaterialIo {
  return {
    readFile: (p) =>
      p in files ? Promise.resolve(files[p]) : Promise.reject(new Error("No such file")),
    stat: (p) => Promise.resolve({ uid: stats[p]?.[0] ?? 0, mode: stats[p]?.[1] ?? 0o100600 }),
    asRoot: true,
  };
}

Deno.test({
  name: "loadTlsMaterial",
  ignore: !havePeer("/usr/bin/openssl"),
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    const a = await makeTestCert(await Deno.makeTempDir({ dir }), "a.example");
    const b = await makeTestCert(await Deno.makeTempDir({ dir }), "b.example");
    try {
      await t.step("certificate and key files", async () => {
        const r = await loadTlsMaterial(
          policy("smtpd_tls_cert_file = /c.pem\nsmtpd_tls_key_file = /k.pem\n"),
          io({ "/c.pem": a.cert, "/k.pem": a.key }),
        );
        assertEquals([r.error, r.warnings], [null, []]);
        assertEquals(r.material!.subject, "CN=a.example");
        assertEquals(pemBlocks(r.material!.certs).length, 1);
        assertEquals(r.material!.files, ["/c.pem", "/k.pem"]);
      });
      await t.step("one file with both (the key file defaults to the cert file)", async () => {
        const r = await loadTlsMaterial(
          policy("smtpd_tls_cert_file = /both.pem\n"),
          io({ "/both.pem": a.key + a.cert + a.ca }),
        );
        assertEquals(r.error, null);
        assertEquals(pemBlocks(r.material!.certs).length, 2); // leaf and CA, in order
      });
      await t.step("chain files: key then chain; they win over the cert file", async () => {
        const r = await loadTlsMaterial(
          policy("smtpd_tls_cert_file = /nonexistent\nsmtpd_tls_chain_files = /chain.pem\n"),
          io({ "/chain.pem": b.key + b.cert + b.ca }),
        );
        assertEquals(r.error, null);
        assertEquals(r.material!.subject, "CN=b.example");
      });
      await t.step("a key file others can read, or not root's: warnings", async () => {
        const r = await loadTlsMaterial(
          policy("smtpd_tls_cert_file = /c.pem\nsmtpd_tls_key_file = /k.pem\n"),
          io({ "/c.pem": a.cert, "/k.pem": a.key }, { "/k.pem": [1000, 0o100644] }),
        );
        assert(r.material);
        assertEquals(r.warnings.length, 2, r.warnings.join("\n"));
        assertMatch(r.warnings[0], /"\/k\.pem" is accessible by group or others \(mode 0644\)/);
        assertMatch(r.warnings[1], /"\/k\.pem" is not owned by root \(uid 1000\)/);
      });
      await t.step("errors", async () => {
        const cases: [string, Record<string, string>, RegExp][] = [
          ["", {}, /^no server certificate/],
          ["smtpd_tls_cert_file = /c.pem\n", {}, /^cannot read certificate file "\/c\.pem"/],
          ["smtpd_tls_cert_file = /c.pem\n", { "/c.pem": a.cert }, /^no private key in "\/c\.pem"/],
          [
            "smtpd_tls_cert_file = /c.pem\nsmtpd_tls_key_file = /k.pem\n",
            { "/c.pem": a.cert, "/k.pem": b.key },
            /does not match the certificate/,
          ],
          [
            "smtpd_tls_chain_files = /a.pem, /b.pem\n",
            { "/a.pem": a.key + a.cert, "/b.pem": b.key + b.cert },
            /more than one private key/,
          ],
          [
            "smtpd_tls_cert_file = /c.pem\nsmtpd_tls_key_file = /k.pem\n",
            {
              "/c.pem": a.cert,
              "/k.pem":
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            },
            /is encrypted/,
          ],
          [
            "smtpd_tls_cert_file = /c.pem\nsmtpd_tls_key_file = /k.pem\n",
            {
              "/c.pem":
                "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
              "/k.pem": a.key,
            },
            /^cannot use the certificate and key/,
          ],
        ];
        for (const [main, files, re] of cases) {
          const r = await loadTlsMaterial(policy(main), io(files));
          assertEquals(r.material, null, main);
          assertMatch(r.error ?? "", re);
        }
      });
      await t.step(
        "servicesTls: per smtpd service; mandatory TLS without a certificate stops the start",
        async () => {
          const conf = (o: Record<string, string>) =>
            Promise.resolve(makeConfig("/x", "compatibility_level = 3.6\n", { overrides: o }));
          const services: { name: string; command: string; o: Record<string, string> }[] = [
            { name: "smtp", command: "smtpd", o: {} },
            {
              name: "submission",
              command: "smtpd",
              o: { smtpd_tls_security_level: "may", smtpd_tls_cert_file: "/c.pem" },
            },
            { name: "smtps", command: "smtpd", o: { smtpd_tls_wrappermode: "yes" } },
            { name: "opportunistic", command: "smtpd", o: { smtpd_tls_security_level: "may" } },
            { name: "cleanup", command: "cleanup", o: {} },
          ];
          const r = await servicesTls(
            services,
            (s) => conf(s.o),
            io({ "/c.pem": a.key + a.cert }),
          );
          assertEquals([...r.material.keys()], ["submission"]);
          assertEquals(r.errors, [
            "master.cf: service smtps: smtpd_tls_wrappermode = yes needs a usable certificate: " +
            "no server certificate (smtpd_tls_cert_file and smtpd_tls_chain_files are empty)",
          ]);
          assertEquals(r.warnings, []); // "may" without a certificate: smtpd says so itself
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
