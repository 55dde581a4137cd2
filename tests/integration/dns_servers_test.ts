/**
 * postwarden_dns_servers: an instance whose daemons ask a name server on a
 * loopback port of its own instead of /etc/resolv.conf's, with no private
 * namespace and no root. smtpd's reject_unknown_sender_domain follows that
 * server's zone (its A answer over UDP, its NXDOMAIN confirmed over TCP),
 * which the sandbox reaches because the grants follow the setting too.
 */
import { assertEquals } from "../helpers/assert.ts";
import { smtpSend, startInstance } from "../helpers/instance.ts";
import { startDnsServer } from "../helpers/dns_server.ts";

Deno.test({
  name: "postwarden_dns_servers: the daemons ask the configured name server, on its port",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dns = startDnsServer("127.0.0.1", 0, {
      names: { "known.test": { A: ["192.0.2.10"], MX: [[10, "known.test"]] } },
    });
    const inst = await startInstance({
      mainCf: [
        `postwarden_dns_servers = 127.0.0.1:${dns.port}`,
        "smtpd_sender_restrictions = reject_unknown_sender_domain",
        // A confirmed NXDOMAIN is 550 now; a lookup that failed would still be 450.
        "unknown_address_reject_code = 550",
      ].join("\n"),
    });
    try {
      const send = (from: string) =>
        smtpSend(inst.port, {
          from,
          to: ["postmaster@mx.test.example"],
          body: "Subject: x\n\nx\n",
        });
      assertEquals((await send("a@known.test")).code, 250);
      const r = await send("a@unknown.test");
      assertEquals(r.code, 550, r.replies.join("\n"));
      assertEquals(
        r.text,
        "<a@unknown.test>: Sender address rejected: Domain not found",
      );
      assertEquals(dns.queries.includes("MX known.test"), true, dns.queries.join());
      assertEquals(dns.queries.includes("TCP MX unknown.test"), true, dns.queries.join());
    } finally {
      await inst.stop();
      dns.close();
    }
  },
});
