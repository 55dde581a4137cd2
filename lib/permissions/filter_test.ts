import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { parseMasterCf } from "../config/mod.ts";
import { daemonGrants, type PermissionContext } from "./mod.ts";

// An amavis-style setup: the filter on 10024, the re-injection smtpd on 10025 unfiltered.
const MASTER = parseMasterCf(
  (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url))) +
    "scan unix - - n - 2 smtp\n" +
    "127.0.0.1:10025 inet n - n - - smtpd -o content_filter= " +
    "-o smtpd_authorized_xforward_hosts=127.0.0.0/8\n",
).services.filter((s) => s.command !== "proxymap");

function ctx(params: Record<string, string>): PermissionContext {
  const all: Record<string, string> = {
    inet_interfaces: "127.0.0.1",
    relayhost: "[192.0.2.1]:587",
    mail_spool_directory: "/q/mail/",
    smtpd_peername_lookup: "yes",
    postwarden_smtp_ipv6_destinations: "",
    content_filter: "",
    default_filter_nexthop: "",
    postwarden_filter_destinations: "",
    ...params,
  };
  return { queueDir: "/q", nameservers: ["10.0.0.53"], services: MASTER, param: (n) => all[n] };
}
const svc = (name: string) => MASTER.find((s) => s.name === name)!;
const tcp = (g: { net: string[] }) => g.net.filter((n) => !n.startsWith("unix:"));

Deno.test("content filter grants follow the configured filters exactly", async (t) => {
  await t.step("no filter: the relayhost only", () => {
    assertEquals(tcp(daemonGrants(svc("smtp"), ctx({}))), ["192.0.2.1:587"]);
    assertEquals(tcp(daemonGrants(svc("scan"), ctx({}))), ["192.0.2.1:587"]);
  });
  await t.step("the filter's transport gets its next hop, the other smtp does not", () => {
    const c = ctx({ content_filter: "scan:[127.0.0.1]:10024" });
    assertEquals(tcp(daemonGrants(svc("scan"), c)), ["192.0.2.1:587", "127.0.0.1:10024"]);
    assertEquals(tcp(daemonGrants(svc("smtp"), c)), ["192.0.2.1:587"]);
  });
  await t.step("IPv6 literal, and a filter without next hop uses default_filter_nexthop", () => {
    assertEquals(
      tcp(daemonGrants(svc("smtp"), ctx({ content_filter: "smtp:[::1]:10024" }))),
      ["192.0.2.1:587", "[::1]:10024"],
    );
    assertEquals(
      tcp(daemonGrants(
        svc("smtp"),
        ctx({ content_filter: "smtp:", default_filter_nexthop: "[127.0.0.1]:10026" }),
      )),
      ["192.0.2.1:587", "127.0.0.1:10026"],
    );
    const domain = tcp(daemonGrants(svc("smtp"), ctx({ content_filter: "smtp" })));
    assert(domain.includes("0.0.0.0/0:25"), domain.join());
  });
  await t.step("FILTER action destinations listed in postwarden_filter_destinations", () => {
    const c = ctx({ postwarden_filter_destinations: "scan:[127.0.0.1]:10030, smtp:[10.1.1.1]:25" });
    assertEquals(tcp(daemonGrants(svc("scan"), c)), ["192.0.2.1:587", "127.0.0.1:10030"]);
    assertEquals(tcp(daemonGrants(svc("smtp"), c)), ["192.0.2.1:587", "10.1.1.1:25"]);
  });
});
