import { sockets } from "../../tests/helpers/grants.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { parseMasterCf } from "../config/mod.ts";
import { daemonGrants, type PermissionContext } from "./mod.ts";
import { lmtpNexthops } from "./lmtp.ts";

const MASTER = parseMasterCf(
  await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url)),
).services.filter((s) => s.command !== "proxymap");

function ctx(params: Record<string, string> = {}): PermissionContext {
  const all: Record<string, string> = {
    inet_interfaces: "127.0.0.1",
    relayhost: "",
    lmtp_tcp_port: "24",
    default_transport: "smtp",
    relay_transport: "relay",
    local_transport: "local:$myhostname",
    virtual_transport: "virtual",
    mailbox_transport: "",
    fallback_transport: "",
    transport_maps: "",
    content_filter: "",
    mail_spool_directory: "/q/mail/",
    ...params,
  };
  return { queueDir: "/q", nameservers: ["10.0.0.53"], services: MASTER, param: (n) => all[n] };
}

const lmtp = MASTER.find((s) => s.name === "lmtp")!;

Deno.test("lmtp permission set", async (t) => {
  await t.step("stock configuration: its own sockets and the active queue, no server", () => {
    const g = daemonGrants(lmtp, ctx());
    assertEquals(sockets(g.read), ["/q/private/lmtp", "/q/peer/lmtp.unix.qmgr", "/q/active"]);
    assertEquals(sockets(g.net), ["unix:/q/private/lmtp", "unix:/q/peer/lmtp.unix.qmgr"]);
    assertEquals(sockets(g.write), ["/q/private/lmtp", "/q/peer/lmtp.unix.qmgr"]);
    assertEquals(g.run, []);
  });
  await t.step("exactly the sockets and address:ports the transports name", () => {
    const g = daemonGrants(
      lmtp,
      ctx({
        mailbox_transport: "lmtp:unix:private/dovecot-lmtp",
        virtual_transport: "lmtp:inet:[127.0.0.1]:2424",
        transport_maps: "hash:/etc/postfix/transport, static:{lmtp:inet:[::1]}",
        // Another service's destinations are not this one's.
        relay_transport: "other:unix:/run/other",
      }),
    );
    // The third socket: local's, for mailbox_transport (pass.ts).
    assertEquals(sockets(g.net).slice(2), [
      "unix:/q/peer/lmtp.unix.local",
      "unix:/q/private/dovecot-lmtp",
      "127.0.0.1:2424",
      "[::1]:24",
    ]);
    assertEquals(sockets(g.write).slice(2), ["/q/peer/lmtp.unix.local", "/q/private/dovecot-lmtp"]);
    assertEquals(sockets(g.read).slice(2), [
      "/q/peer/lmtp.unix.local",
      "/q/active",
      "/q/private/dovecot-lmtp",
    ]);
  });
  await t.step("a host name: its port anywhere, the resolvers, hosts and resolv.conf", () => {
    const g = daemonGrants(lmtp, ctx({ virtual_transport: "lmtp:inet:mail.example" }));
    assertEquals(sockets(g.net).slice(2), ["0.0.0.0/0:24", "10.0.0.53:53"]);
    assertEquals(sockets(g.read).slice(2), ["/q/active", "/etc/hosts", "/etc/resolv.conf"]);
  });
  await t.step("another lmtp service: its own transports and the content filter it carries", () => {
    const services = parseMasterCf(
      "dlmtp unix - - n - - lmtp\n  -o lmtp_tcp_port=2424\n" +
        "2525 inet n - n - - smtpd\n  -o content_filter=dlmtp:inet:[10.1.1.1]\n",
    ).services;
    const c = ctx({ virtual_transport: "dlmtp:inet:[10.0.0.9]", lmtp_tcp_port: "2424" });
    const hops = lmtpNexthops(services[0], services, c.param);
    assertEquals(hops, ["inet:[10.0.0.9]", "inet:[10.1.1.1]"]);
    const g = daemonGrants(services[0], { ...c, services });
    assertEquals(sockets(g.net).filter((n) => !n.startsWith("unix:")), [
      "10.0.0.9:2424",
      "10.1.1.1:2424",
    ]);
  });
  await t.step("a next hop that does not parse grants nothing", () => {
    const g = daemonGrants(lmtp, ctx({ virtual_transport: "lmtp:inet:host:99999" }));
    assertEquals(sockets(g.net).slice(2), []);
  });
  await t.step("mailbox_transport: local gets a socket of its own to lmtp, and only then", () => {
    const local = MASTER.find((s) => s.name === "local")!;
    const sock = "/q/peer/lmtp.unix.local";
    const on = ctx({ mailbox_transport: "lmtp:unix:private/dovecot-lmtp" });
    assert(daemonGrants(local, on).write.includes(sock));
    assert(daemonGrants(lmtp, on).write.includes(sock));
    assert(daemonGrants(lmtp, on).net.includes("unix:/q/private/dovecot-lmtp"));
    assert(!daemonGrants(local, on).net.includes("unix:/q/private/dovecot-lmtp"));
    assert(!daemonGrants(local, ctx()).write.includes(sock));
    assert(!daemonGrants(lmtp, ctx()).write.includes(sock));
  });
});
