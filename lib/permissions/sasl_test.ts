/**
 * What AUTH adds to the permission sets: smtpd reaches exactly Dovecot's
 * socket or port; with passwd-file it gets a socket of the auth daemon and
 * no grant on the password file, which the auth daemon alone reads (with
 * npm code for bcrypt and argon2id, and nothing else).
 */
import { sockets } from "../../tests/helpers/grants.ts";
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { parseMasterCf } from "../config/mod.ts";
import {
  daemonGrants,
  daemonTableGrants,
  grantFlags,
  peersOf,
  type PermissionContext,
} from "./mod.ts";

const MASTER = parseMasterCf(
  (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url))) +
    "auth unix - - n - - auth\n",
).services.filter((s) => s.command !== "proxymap");

function ctx(params: Record<string, string>): PermissionContext {
  const all: Record<string, string> = {
    inet_interfaces: "127.0.0.1",
    relayhost: "",
    mail_spool_directory: "/q/mail/",
    smtpd_peername_lookup: "no",
    postwarden_smtp_ipv6_destinations: "",
    queue_directory: "/q",
    smtpd_sasl_auth_enable: "yes",
    ...params,
  };
  return { queueDir: "/q", nameservers: [], services: MASTER, param: (n) => all[n] };
}

const svc = (name: string) => MASTER.find((s) => s.name === name)!;

Deno.test("permission sets with AUTH", async (t) => {
  await t.step("dovecot: smtpd reaches exactly the auth socket (relative to the queue)", () => {
    const g = daemonGrants(
      svc("2525"),
      ctx({ smtpd_sasl_type: "dovecot", smtpd_sasl_path: "private/auth" }),
    );
    assert(g.net.includes("unix:/q/private/auth"), g.net.join());
    assert(g.read.includes("/q/private/auth") && g.write.includes("/q/private/auth"));
    const inet = daemonGrants(
      svc("2525"),
      ctx({ smtpd_sasl_type: "dovecot", smtpd_sasl_path: "inet:127.0.0.1:12345" }),
    );
    assert(inet.net.includes("127.0.0.1:12345"), inet.net.join());
    assert(!inet.net.some((n) => n.includes("private/auth")));
  });

  await t.step("passwd-file: the auth daemon reads the file, smtpd does not", () => {
    const c = ctx({ smtpd_sasl_type: "passwd-file", smtpd_sasl_path: "/etc/postfix/passwd" });
    const smtpd = daemonGrants(svc("2525"), c);
    assert(!smtpd.read.includes("/etc/postfix/passwd"), smtpd.read.join());
    assertEquals(peersOf(svc("2525"), MASTER), ["cleanup", "anvil", "auth"]);
    assert(smtpd.net.includes("unix:/q/peer/auth.inet.2525"), smtpd.net.join());
    assertEquals(smtpd.npm, []);
    const auth = daemonGrants(svc("auth"), c);
    assertEquals(sockets(auth.read), [
      "/q/private/auth",
      "/q/peer/auth.inet.2525",
      "/etc/postfix/passwd",
    ]);
    assertEquals(sockets(auth.net), ["unix:/q/private/auth", "unix:/q/peer/auth.inet.2525"]);
    assertEquals(auth.npm, ["bcryptjs", "hash-wasm"]);
    assertEquals(auth.run, []);
    const flags = grantFlags(auth, "/code");
    assert(flags.includes("--cached-only") && flags.includes("--deny-import"), flags.join(" "));
    assert(flags.includes("--frozen"));
    // Every other daemon keeps --no-npm.
    for (const name of ["2525", "cleanup", "qmgr", "local", "smtp"]) {
      assert(grantFlags(daemonGrants(svc(name), c), "/code").includes("--no-npm"), name);
      assert(!daemonGrants(svc(name), c).read.includes("/etc/postfix/passwd"), name);
    }
  });

  await t.step("cyrus is refused where grants are computed too", () => {
    assertThrows(() => daemonGrants(svc("2525"), ctx({ smtpd_sasl_type: "cyrus" })));
  });
  await t.step(
    "smtpd reads smtpd_sender_login_maps (a hash: table: index and source)",
    async () => {
      const values: Record<string, string> = {
        smtpd_sender_login_maps: "hash:/etc/pw/sender_login",
      };
      const c = { readTextFile: () => Promise.reject(new Error("not read")) };
      const g = await daemonTableGrants("smtpd", (n) => values[n], c, { proxymap: false });
      assertEquals(g.grants.read, ["/etc/pw/sender_login.hash.pwdb", "/etc/pw/sender_login"]);
    },
  );
});
