import { sockets } from "../../tests/helpers/grants.ts";
import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "../../tests/helpers/assert.ts";
import { parseMasterCf } from "../config/mod.ts";
import {
  daemonGrants,
  daemonNameservers,
  daemonTableGrants,
  grantFlags,
  ipv6Destinations,
  nameserverGrants,
  peersOf,
  type PermissionContext,
  proxymapNpm,
  smtpDestinations,
} from "./mod.ts";

// As master runs the stock master.cf with the embedded main.cf: proxymap is
// skipped while no table needs it (lib/service/catalog.ts).
// The shipped master.cf, with the commented mtasts service on.
const MASTER = parseMasterCf(
  (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url)))
    .replace(/^#(mtasts\s+unix)/m, "$1"),
)
  .services.filter((s) => s.command !== "proxymap");

function ctx(params: Record<string, string> = {}): PermissionContext {
  const all: Record<string, string> = {
    inet_interfaces: "127.0.0.1",
    relayhost: "",
    mail_spool_directory: "/q/mail/",
    smtpd_peername_lookup: "yes",
    postwarden_smtp_ipv6_destinations: "",
    ...params,
  };
  return {
    queueDir: "/q",
    nameservers: ["10.0.0.53"],
    services: MASTER,
    param: (n) => all[n],
  };
}

const svc = (name: string) => MASTER.find((s) => s.name === name)!;

Deno.test("permission sets", async (t) => {
  await t.step("smtpd: its port, its own cleanup socket, the resolver; no queue folder", () => {
    const g = daemonGrants(svc("2525"), ctx());
    const sock = "/q/peer/cleanup.inet.2525";
    const anvil = "/q/peer/anvil.inet.2525";
    // anvil starts on demand: smtpd may ask master for it (lib/service/wake.ts).
    const master = "/q/pid/master.sock";
    assertEquals(sockets(g.net), [
      `unix:${sock}`,
      `unix:${anvil}`,
      `unix:${master}`,
      "127.0.0.1:2525",
      "10.0.0.53:53",
    ]);
    assert(!g.read.some((p) => /\/q\/(incoming|active|deferred|maildrop)/.test(p)), g.read.join());
    assertEquals(
      sockets(g.write),
      [sock, anvil, master],
      "no log, no config, no other daemon's socket",
    );
    assertEquals(sockets(g.read), [sock, anvil, master, "/etc/hosts", "/etc/resolv.conf"]);
  });
  await t.step("smtpd: exactly the policy servers its lists, classes and -o name", () => {
    const g = daemonGrants(
      svc("2525"),
      ctx({
        smtpd_peername_lookup: "no",
        smtpd_restriction_classes: "greylist",
        greylist: "check_policy_service inet:127.0.0.1:10023",
        smtpd_recipient_restrictions:
          "reject_unauth_destination, check_policy_service unix:private/policy, " +
          "check_policy_service { unix:/run/pf.sock, timeout=10s }, greylist",
        smtpd_client_restrictions: "check_policy_service inet:[::1]:9998",
        smtpd_data_restrictions: "check_policy_service tcp:10.0.0.1:1",
      }),
    );
    assertEquals(sockets(g.net), [
      "unix:/q/peer/cleanup.inet.2525",
      "unix:/q/peer/anvil.inet.2525",
      "unix:/q/pid/master.sock",
      "127.0.0.1:2525",
      "[::1]:9998",
      "127.0.0.1:10023",
      "unix:/q/private/policy",
      "unix:/run/pf.sock",
    ]);
    assertEquals(sockets(g.write), [
      "/q/peer/cleanup.inet.2525",
      "/q/peer/anvil.inet.2525",
      "/q/pid/master.sock",
      "/q/private/policy",
      "/run/pf.sock",
    ]);
  });
  await t.step("smtpd without peer name lookups gets no resolver", () => {
    const g = daemonGrants(svc("2525"), ctx({ smtpd_peername_lookup: "no" }));
    assert(!g.read.includes("/etc/resolv.conf"), g.read.join());
    assertEquals(sockets(g.net), [
      "unix:/q/peer/cleanup.inet.2525",
      "unix:/q/peer/anvil.inet.2525",
      "unix:/q/pid/master.sock",
      "127.0.0.1:2525",
    ]);
  });
  await t.step("smtpd without peer name lookups gets the resolver for DNS restrictions", () => {
    for (
      const [name, value] of [
        ["smtpd_client_restrictions", "permit_mynetworks, reject_rbl_client zen.example"],
        ["smtpd_sender_restrictions", "reject_unknown_sender_domain"],
        ["smtpd_restriction_classes", "strict"],
      ]
    ) {
      const params: Record<string, string> = { smtpd_peername_lookup: "no", [name]: value };
      if (name === "smtpd_restriction_classes") params.strict = "reject_rhsbl_helo dbl.example";
      const g = daemonGrants(svc("2525"), ctx(params));
      assertEquals(g.net.at(-1), "10.0.0.53:53", `${name} = ${value}`);
    }
    const none = daemonGrants(
      svc("2525"),
      ctx({
        smtpd_peername_lookup: "no",
        smtpd_client_restrictions: "reject_unknown_client_hostname",
      }),
    );
    assertEquals(sockets(none.net), [
      "unix:/q/peer/cleanup.inet.2525",
      "unix:/q/peer/anvil.inet.2525",
      "unix:/q/pid/master.sock",
      "127.0.0.1:2525",
    ]);
  });
  await t.step("cleanup: incoming/, hold/, its sockets (one per client) and qmgr's for it", () => {
    const g = daemonGrants(svc("cleanup"), ctx());
    assertEquals(sockets(g.write), [
      "/q/private/cleanup",
      "/q/peer/qmgr.unix.cleanup",
      "/q/peer/cleanup.inet.2525",
      "/q/peer/cleanup.unix.pickup",
      "/q/peer/cleanup.unix.bounce",
      "/q/peer/cleanup.unix.local",
      "/q/incoming",
      "/q/hold",
    ]);
    assert(g.net.every((n) => n.startsWith("unix:")), g.net.join());
  });
  await t.step("a socket the daemon listens on is granted with the name it binds first", () => {
    const cleanup = daemonGrants(svc("cleanup"), ctx());
    for (const list of [cleanup.read, cleanup.write]) {
      assert(list.includes("/q/private/.cleanup"), list.join());
      assert(list.includes("/q/peer/.cleanup.unix.pickup"), list.join());
    }
    assert(cleanup.net.includes("unix:/q/peer/.cleanup.unix.pickup"));
    // A client binds nothing: pickup gets no bind name for cleanup's socket.
    const pickup = daemonGrants(svc("pickup"), ctx());
    assert(!pickup.write.some((p) => p.includes("/.cleanup")), pickup.write.join());
  });
  await t.step("a client may use only the socket made for it", () => {
    const pickup = daemonGrants(svc("pickup"), ctx());
    assert(pickup.write.includes("/q/peer/cleanup.unix.pickup"));
    assert(!pickup.write.includes("/q/private/cleanup"));
    assert(!pickup.write.includes("/q/peer/cleanup.inet.2525"));
  });
  await t.step("qmgr: the queue folders and the agents' sockets, no TCP", () => {
    const g = daemonGrants(svc("qmgr"), ctx());
    for (const d of ["incoming", "active", "deferred", "corrupt", "defer"]) {
      assert(g.write.includes(`/q/${d}`), d);
    }
    assert(!g.read.includes("/q/hold") && !g.write.includes("/q/hold"), "held mail is not qmgr's");
    assert(g.net.includes("unix:/q/peer/smtp.unix.qmgr"));
    assert(g.net.includes("unix:/q/peer/bounce.unix.qmgr"));
    assert(!g.net.some((n) => /\/cleanup(\.|$)/.test(n)), "qmgr does not submit mail");
    assert(g.net.every((n) => n.startsWith("unix:")), g.net.join());
  });
  await t.step("smtp: relayhost exactly, or port 25 anywhere plus DNS; read-only queue", () => {
    assertEquals(smtpDestinations("[127.0.0.1]:2526", ["10.0.0.53"]), ["127.0.0.1:2526"]);
    assertEquals(smtpDestinations("", ["10.0.0.53"]), ["0.0.0.0/0:25", "10.0.0.53:53"]);
    assertEquals(smtpDestinations("[::1]:2526", []), ["[::1]:2526"]);
    const g = daemonGrants(svc("smtp"), ctx({ relayhost: "[127.0.0.1]:2526" }));
    assertEquals(sockets(g.net), [
      "unix:/q/private/smtp",
      "unix:/q/peer/smtp.unix.qmgr",
      "127.0.0.1:2526",
    ]);
    assert(!g.write.includes("/q/active"), "agents never write the queue");
  });
  await t.step(
    "smtp: read-only access to exactly the CA file and directory it verifies with",
    () => {
      const none = daemonGrants(svc("smtp"), ctx());
      assert(!none.read.some((p) => p.includes("ssl")), none.read.join());
      const g = daemonGrants(
        svc("smtp"),
        ctx({ smtp_tls_CAfile: "/etc/ssl/ca.pem", smtp_tls_CApath: "/etc/ssl/cas" }),
      );
      assert(g.read.includes("/etc/ssl/ca.pem") && g.read.includes("/etc/ssl/cas"), g.read.join());
      assert(!g.write.some((p) => p.startsWith("/etc/ssl")), g.write.join());
    },
  );
  await t.step("smtp: each fallback relay as a relayhost would be granted", () => {
    const g = daemonGrants(
      svc("smtp"),
      ctx({ relayhost: "[127.0.0.1]:2526", smtp_fallback_relay: "[10.0.0.9]:587, backup.example" }),
    );
    assertEquals(sockets(g.net).slice(-4), [
      "127.0.0.1:2526",
      "10.0.0.9:587",
      "0.0.0.0/0:25",
      "10.0.0.53:53",
    ]);
  });
  await t.step("smtp: listed IPv6 destinations", () => {
    assertEquals(ipv6Destinations("[2001:db8::25]:2525, 2001:db8::26 nonsense [1.2.3.4]:25"), [
      "[2001:db8::25]:2525",
      "[2001:db8::26]:25",
    ]);
    const g = daemonGrants(svc("smtp"), ctx({ postwarden_smtp_ipv6_destinations: "2001:db8::25" }));
    assert(g.net.includes("[2001:db8::25]:25"), g.net.join());
  });
  await t.step(
    "local: the mail spool and cleanup (forwarding), no TCP; discard/error: nothing of the queue",
    () => {
      const local = daemonGrants(svc("local"), ctx());
      assert(local.write.includes("/q/mail"));
      assertEquals(sockets(local.net), [
        "unix:/q/private/local",
        "unix:/q/peer/cleanup.unix.local",
        // cleanup starts on demand: local wakes it through master (wake.ts).
        "unix:/q/pid/master.sock",
        "unix:/q/peer/local.unix.qmgr",
      ]);
      assert(!local.write.includes("/q/private/cleanup"), "only its own cleanup socket");
      for (const name of ["discard", "error"]) {
        const g = daemonGrants(svc(name), ctx());
        assertEquals(sockets(g.read), [`/q/private/${name}`, `/q/peer/${name}.unix.qmgr`]);
      }
    },
  );
  await t.step("flags are always scoped", () => {
    for (const s of MASTER) {
      for (const f of grantFlags(daemonGrants(s, ctx()), "/code")) {
        const fixed = ["--no-prompt", "--no-config", "--no-lock", "--no-remote", "--no-npm"];
        assert(
          fixed.includes(f) || f === "--deny-import" ||
            /^--allow-(read|write|net|run|sys)=\S+$/.test(f),
          f,
        );
      }
    }
  });
  await t.step("mail authentication: smtpd's resolver, cleanup's key directory", () => {
    for (
      const params of [
        { postwarden_authentication_checks: "dkim" } as Record<string, string>,
        { smtpd_end_of_data_restrictions: "postwarden_reject_dmarc_fail" },
      ]
    ) {
      const g = daemonGrants(svc("2525"), ctx({ smtpd_peername_lookup: "no", ...params }));
      assert(g.net.includes("10.0.0.53:53"), JSON.stringify(params));
      assert(g.read.includes("/etc/resolv.conf"), JSON.stringify(params));
    }
    const signing = {
      postwarden_dkim_signing_table: "hash:/etc/pw/dkim_signing",
      postwarden_dkim_key_directory: "/etc/pw/dkim",
    };
    const cleanup = daemonGrants(svc("cleanup"), ctx(signing));
    assert(cleanup.read.includes("/etc/pw/dkim"), cleanup.read.join());
    assert(!cleanup.write.some((p) => p.startsWith("/etc/pw")), cleanup.write.join());
    for (const s of MASTER.filter((s) => s.command !== "cleanup")) {
      const g = daemonGrants(s, ctx(signing));
      assert(!g.read.includes("/etc/pw/dkim"), `${s.name}: ${g.read.join()}`);
    }
    // Without a signing table, no key directory.
    const none = daemonGrants(
      svc("cleanup"),
      ctx({ postwarden_dkim_key_directory: "/etc/pw/dkim" }),
    );
    assert(!none.read.includes("/etc/pw/dkim"), none.read.join());
  });
  await t.step("postscreen: its port, smtpd's pass socket, DNS for its lists, its KV cache", () => {
    const ps = {
      name: "25",
      type: "inet" as const,
      command: "postscreen",
      private: false,
      unprivileged: true,
      maxproc: 1,
      wakeup: 0,
      args: [],
      overrides: {},
    };
    const params = {
      postscreen_dnsbl_sites: "zen.example*2",
      postscreen_cache_map: "btree:/var/lib/pw/postscreen_cache",
      smtpd_service_name: "smtpd",
    };
    const g = daemonGrants(
      { ...svc("2525"), ...ps } as typeof ps & ReturnType<typeof svc>,
      ctx(params),
    );
    assertEquals(sockets(g.net), ["127.0.0.1:25", "unix:/q/private/smtpd", "10.0.0.53:53"]);
    for (const f of ["", "-wal", "-shm", "-journal"]) {
      assert(g.write.includes(`/var/lib/pw/postscreen_cache.kv${f}`), g.write.join());
    }
    assert(
      !g.read.some((p) => p.startsWith("/q/") && !p.startsWith("/q/private/smtpd")),
      g.read.join(),
    );
    // Without lists, no resolver; a bad cache map, no cache files.
    const bare = daemonGrants(
      { ...svc("2525"), ...ps } as typeof ps & ReturnType<typeof svc>,
      ctx({ postscreen_cache_map: "proxy:btree:/x" }),
    );
    assertEquals(sockets(bare.net), ["127.0.0.1:25", "unix:/q/private/smtpd"]);
    assertEquals(bare.write.filter((p) => p.includes("postscreen")), []);
  });
  await t.step("MTA-STS: mtasts gets port 443 and DNS; smtp its socket only when enabled", () => {
    const params = {
      postwarden_mta_sts: "yes",
      postwarden_mta_sts_CAfile: "/etc/ssl/certs/ca-certificates.crt",
      postwarden_mta_sts_cache: "/var/lib/pw/mta_sts.kv",
    };
    const g = daemonGrants(svc("mtasts"), ctx(params));
    // Its own socket and one per client service (smtp, relay), as every service.
    assertEquals(sockets(g.net), [
      "unix:/q/private/mtasts",
      "unix:/q/peer/mtasts.unix.smtp",
      "unix:/q/peer/mtasts.unix.relay",
      "10.0.0.53:53",
      "0.0.0.0/0:443",
    ]);
    assert(g.read.includes("/etc/ssl/certs/ca-certificates.crt"), g.read.join());
    for (const f of ["", "-wal", "-shm", "-journal"]) {
      assert(g.write.includes(`/var/lib/pw/mta_sts.kv${f}`), g.write.join());
    }
    assert(!g.read.some((p) => p.startsWith("/q/") && !p.includes("mtasts")), g.read.join());
    const smtp = daemonGrants(svc("smtp"), ctx(params));
    assert(smtp.net.includes("unix:/q/peer/mtasts.unix.smtp"), smtp.net.join());
    assert(smtp.read.includes("/etc/ssl/certs/ca-certificates.crt"), smtp.read.join());
    assert(!smtp.net.includes("0.0.0.0/0:443"), smtp.net.join());
    const off = daemonGrants(svc("smtp"), ctx());
    assert(!off.net.some((n) => n.includes("mtasts")), off.net.join());
    for (const s of MASTER.filter((s) => s.command !== "mtasts")) {
      assert(!daemonGrants(s, ctx(params)).net.includes("0.0.0.0/0:443"), s.name);
    }
  });
  await t.step("TLS-RPT: smtp reaches mtasts and mtasts cleanup only when enabled", () => {
    const on = { smtp_tlsrpt_enable: "yes" };
    const smtp = daemonGrants(svc("smtp"), ctx(on));
    assert(smtp.net.includes("unix:/q/peer/mtasts.unix.smtp"), smtp.net.join());
    // The MTA-STS anchors are not the reporting's business.
    assert(!smtp.read.includes("/etc/ssl/certs/ca-certificates.crt"), smtp.read.join());
    const mtasts = daemonGrants(svc("mtasts"), ctx(on));
    assert(mtasts.net.includes("unix:/q/peer/cleanup.unix.mtasts"), mtasts.net.join());
    const cleanup = daemonGrants(svc("cleanup"), ctx(on));
    assert(cleanup.net.includes("unix:/q/peer/cleanup.unix.mtasts"), cleanup.net.join());
    const off = daemonGrants(svc("mtasts"), ctx({ postwarden_mta_sts: "yes" }));
    assert(!off.net.some((n) => n.includes("cleanup")), off.net.join());
    const offCleanup = daemonGrants(svc("cleanup"), ctx({ postwarden_mta_sts: "yes" }));
    assert(!offCleanup.net.some((n) => n.includes("mtasts")), offCleanup.net.join());
  });
  await t.step("an unknown command has no permission set", () => {
    assertThrows(
      () => daemonGrants({ ...svc("local"), command: "nonesuch" }, ctx()),
      Error,
      "no permission profile",
    );
  });
});

Deno.test("table grants: each daemon gets exactly its tables' files", async (t) => {
  await t.step("with proxymap running, its clients get a socket to it", () => {
    const all = parseMasterCf("proxymap unix - - n - - proxymap\n").services.concat(MASTER);
    const smtpd = all.find((s) => s.command === "smtpd")!;
    assertEquals(peersOf(smtpd, all), ["cleanup", "anvil", "proxymap"]);
    // smtp reads smtp_tls_policy_maps and smtp_sasl_password_maps (proxy: tables too).
    const smtp = all.find((s) => s.name === "smtp")!;
    assertEquals(peersOf(smtp, all), ["proxymap"]);
  });
  await t.step("proxy: and network tables go to proxymap's grants, not the client's", async () => {
    const values: Record<string, string> = {
      alias_maps: "proxy:unix:passwd.byname",
      virtual_alias_maps: "unix:group.byname",
    };
    const p = (n: string) => values[n];
    const c = { readTextFile: () => Promise.reject(new Error("not read")) };
    const smtpd = await daemonTableGrants("local", p, c, { proxymap: true });
    assertEquals(smtpd.grants.read, []);
    const pm = await daemonTableGrants("proxymap", p, c, { proxymap: true });
    assertEquals(pm.grants.read, ["/etc/passwd"]);
    const alone = await daemonTableGrants("local", p, c, { proxymap: false });
    assertEquals(alone.grants.read, ["/etc/passwd"], "without proxymap, proxy: is looked through");
    const net = await daemonTableGrants("local", () => "tcp:127.0.0.1:9", c, { proxymap: false });
    assertStringIncludes(net.problems.join(), "looked up through proxymap");
  });
  await t.step("smtpd: the tables of its restriction lists and classes", async () => {
    const values: Record<string, string> = {
      smtpd_client_restrictions: "check_client_access cidr:/etc/pw/clients.cidr, reject",
      smtpd_restriction_classes: "strict",
      strict: "check_sender_access texthash:/etc/pw/senders, permit_mynetworks",
      other: "check_sender_access texthash:/etc/pw/not-a-class",
    };
    const c = { readTextFile: () => Promise.reject(new Error("not read")) };
    const r = await daemonTableGrants("smtpd", (n) => values[n], c);
    assertEquals(r.problems, []);
    assertEquals(r.grants.read.sort(), ["/etc/pw/clients.cidr", "/etc/pw/senders"]);
  });
  await t.step("smtpd: smtpd_forbidden_commands and the discard address maps", async () => {
    const values: Record<string, string> = {
      smtpd_forbidden_commands: "CONNECT GET regexp:/etc/pw/forbidden regexp:{{/^[^A-Z]/ x}}",
      smtpd_discard_ehlo_keyword_address_maps: "cidr:/etc/pw/discard.cidr",
    };
    const c = { readTextFile: () => Promise.reject(new Error("not read")) };
    const r = await daemonTableGrants("smtpd", (n) => values[n], c);
    assertEquals(r.problems, []);
    assertEquals(r.grants.read.sort(), ["/etc/pw/discard.cidr", "/etc/pw/forbidden"]);
  });
  const values: Record<string, string> = {
    alias_maps: "unix:passwd.byname",
    local_recipient_maps: "proxy:unix:passwd.byname unix:passwd.byname",
    virtual_alias_maps: "inline:{a=b}, environ:x",
    mydestination: "localhost, unix:group.byname",
  };
  const param = (n: string) => values[n] ?? "";
  const ctx = { readTextFile: () => Promise.reject(new Error("not read")) };
  await t.step("local: the alias and recipient tables, the resolver's lists", async () => {
    const r = await daemonTableGrants("local", param, ctx);
    assertEquals(r.grants.read, ["/etc/passwd", "/etc/group"]);
    assertEquals(r.problems, []);
  });
  await t.step("smtpd: a list's tables, environ's environment", async () => {
    const r = await daemonTableGrants("smtpd", param, ctx);
    assertEquals(r.grants.read.sort(), ["/etc/group", "/etc/passwd"]);
    assertEquals(r.grants.env, ["*"]);
  });
  await t.step("an unknown table type is a problem naming the parameter", async () => {
    const r = await daemonTableGrants("local", (n) => n === "alias_maps" ? "ldap:x" : "", ctx);
    assertEquals(r.problems.length, 1);
    assertStringIncludes(r.problems[0], "alias_maps: ");
    assertStringIncludes(r.problems[0], '"ldap" is not supported');
  });
  await t.step("the grants become flags", () => {
    const flags = grantFlags({
      read: ["/etc/passwd"],
      write: [],
      net: [],
      run: [],
      sys: [],
      env: ["*"],
      npm: [],
    }, "/code");
    assertEquals(flags.includes("--allow-env"), true);
  });
});

Deno.test("inet_interfaces = all: the resolver's daemons and smtp may list this host's addresses", () => {
  const all = ctx({ inet_interfaces: "all" });
  const smtpd = MASTER.find((s) => s.command === "smtpd")!;
  // smtp: an MX host that is this host is a mailer loop (nexthop.ts).
  const smtp = MASTER.find((s) => s.name === "smtp")!;
  const pickup = MASTER.find((s) => s.name === "pickup")!;
  assertEquals(daemonGrants(smtpd, all).sys, ["networkInterfaces"]);
  assertEquals(daemonGrants(smtp, all).sys, ["networkInterfaces"]);
  assertEquals(daemonGrants(pickup, all).sys, []);
  assertEquals(daemonGrants(smtpd, ctx()).sys, []);
  assertEquals(daemonGrants(smtp, ctx()).sys, []);
});

Deno.test("npm drivers: proxymap alone loads them, and only for tables that need them", async (t) => {
  const all = parseMasterCf("proxymap unix - - n - - proxymap\n").services.concat(MASTER);
  const files: Record<string, string> = {
    "/etc/postfix/pg.cf": "hosts = 127.0.0.1:5432\ndbname = x\nquery = q",
    "/etc/postfix/my.cf": "hosts = db.example:3307\ndbname = x\nquery = q",
  };
  const read = {
    readTextFile: (p: string) =>
      p in files ? Promise.resolve(files[p]) : Promise.reject(new Error(`no ${p}`)),
  };
  const flagsOf = async (command: string, name: string, values: Record<string, string>) => {
    const param = (n: string) => values[n];
    const svc = all.find((s) => s.command === command && (s.name === name || s.type === "inet"))!;
    const tables = await daemonTableGrants(command, param, read, { proxymap: true });
    assertEquals(tables.problems, []);
    const grants = daemonGrants(svc, {
      ...ctx(),
      services: all,
      param: (n) => values[n] ?? ctx().param(n),
      tables: tables.grants,
    });
    return { grants, flags: grantFlags(grants, "/code") };
  };
  const sql = {
    virtual_alias_maps: "pgsql:/etc/postfix/pg.cf",
    transport_maps: "proxy:mysql:/etc/postfix/my.cf",
  };
  const off = ["--no-config", "--no-lock", "--no-remote", "--no-npm", "--deny-import"];
  await t.step("proxymap: the import map, the frozen lock, the npm cache only", async () => {
    const { grants, flags } = await flagsOf("proxymap", "proxymap", sql);
    assertEquals(grants.npm.toSorted(), ["mysql2/promise", "postgres"]);
    assertEquals(flags.slice(0, 7), [
      "--no-prompt",
      "--config=/code/deno.json",
      "--lock=/code/deno.lock",
      "--frozen",
      "--no-remote",
      "--cached-only",
      "--deny-import",
    ]);
    assert(!flags.includes("--no-npm"));
    const net = flags.find((f) => f.startsWith("--allow-net="))!;
    assertStringIncludes(net, "127.0.0.1:5432");
    assertStringIncludes(net, "db.example:3307");
    const read = flags.find((f) => f.startsWith("--allow-read="))!;
    assertStringIncludes(read, "/etc/postfix/pg.cf");
    assertStringIncludes(read, "/etc/postfix/my.cf");
    assertStringIncludes(flags.find((f) => f.startsWith("--allow-env="))!, "PGAPPNAME");
  });
  await t.step("the daemons whose parameters name the tables keep today's flags", async () => {
    for (const [command, name] of [["smtpd", ""], ["cleanup", "cleanup"], ["qmgr", "qmgr"]]) {
      const { grants, flags } = await flagsOf(command, name, sql);
      assertEquals(grants.npm, [], command);
      assertEquals(flags.slice(1, 6), off, command);
      assert(!flags.some((f) => /5432|3307|pg\.cf|my\.cf/.test(f)), `${command}: ${flags}`);
    }
  });
  await t.step("proxymap without an npm table keeps today's flags too", async () => {
    const { flags } = await flagsOf("proxymap", "proxymap", {
      virtual_alias_maps: "tcp:127.0.0.1:7777",
      alias_maps: "proxy:unix:passwd.byname",
    });
    assertEquals(flags.slice(1, 6), off);
    assertStringIncludes(flags.find((f) => f.startsWith("--allow-net="))!, "127.0.0.1:7777");
  });
  await t.step("a UNIX socket server: read, write and net unix: for proxymap", async () => {
    files["/etc/postfix/sock.cf"] = "hosts = unix:/run/postgresql\ndbname = x\nquery = q";
    const { grants } = await flagsOf("proxymap", "proxymap", {
      virtual_alias_maps: "pgsql:/etc/postfix/sock.cf",
    });
    const sock = "/run/postgresql/.s.PGSQL.5432";
    assert(grants.read.includes(sock) && grants.write.includes(sock), grants.read.join());
    assert(grants.net.includes(`unix:${sock}`), grants.net.join());
  });
  await t.step("npm grants for another daemon are refused", () => {
    const g = { read: [], write: [], net: [], run: [], env: [], npm: ["postgres"] };
    assertThrows(
      () => daemonGrants(svc("cleanup"), { ...ctx(), tables: g }),
      Error,
      "only proxymap may load npm code",
    );
  });
  await t.step("proxymapNpm names the tables and modules the start must cache", async () => {
    const r = await proxymapNpm((n) => (sql as Record<string, string>)[n], read);
    assertEquals(r.modules.toSorted(), ["mysql2/promise", "postgres"]);
    assertEquals(r.tables.toSorted(), ["mysql:/etc/postfix/my.cf", "pgsql:/etc/postfix/pg.cf"]);
    const none = await proxymapNpm(
      (n) => n === "alias_maps" ? "proxy:unix:passwd.byname" : "",
      read,
    );
    assertEquals(none, { modules: [], tables: [] });
  });
});

Deno.test("name servers: postwarden_dns_servers, with ports, else resolv.conf's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/resolv.conf`,
      "nameserver 10.0.0.53\nnameserver fe80::1%eth0\n",
    );
    const fromFile = await daemonNameservers("", `${dir}/resolv.conf`);
    assertEquals(fromFile, ["10.0.0.53", "fe80::1"]);
    assertEquals(nameserverGrants(fromFile), ["10.0.0.53:53", "[fe80::1]:53"]);
    const set = await daemonNameservers("127.0.0.1:5353 ::1", `${dir}/resolv.conf`);
    assertEquals(set, ["127.0.0.1:5353", "[::1]:53"]);
    assertEquals(nameserverGrants(set), ["127.0.0.1:5353", "[::1]:53"]);
    assertEquals(await daemonNameservers("", `${dir}/missing`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
