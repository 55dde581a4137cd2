/** Tests for Config (config.ts): defaults, overrides, typed accessors, warnings, loading. */

import { ConfigError } from "./errors.ts";
import { configDirFrom, loadConfig, makeConfig } from "./config.ts";
import { PARAMS } from "./params.ts";
import { POSTFIX_NAMES } from "./postfix_names.ts";
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";

const cfg = (text: string, overrides?: Record<string, string>) =>
  makeConfig("/etc/pw", text, { hostname: "mx.example.org", overrides });

Deno.test("Config values", async (t) => {
  await t.step("raw: explicit, default, unknown", () => {
    const c = cfg("relayhost = [$mydomain]\nfoo = 1\n");
    assertEquals(c.raw("relayhost"), "[$mydomain]");
    assertEquals(c.raw("smtpd_banner"), "$myhostname ESMTP $mail_name");
    assertEquals(c.raw("foo"), "1");
    assertEquals(c.raw("no_such_param"), undefined);
    assertEquals(c.raw("config_directory"), "/etc/pw");
  });
  await t.step("str expands recursively; unknown names throw", () => {
    const c = cfg("relayhost = [$mydomain]\n");
    assertEquals(c.str("relayhost"), "[example.org]");
    assertEquals(c.str("smtpd_banner"), "mx.example.org ESMTP Postwarden");
    assertEquals(c.str("local_transport"), "local:mx.example.org");
    assertThrows(() => c.str("no_such_param"), ConfigError, "no_such_param");
  });
  await t.step("myhostname and mydomain defaults follow Postfix", () => {
    assertEquals(cfg("").str("mydomain"), "example.org");
    const short = makeConfig("/x", "", { hostname: "vm" });
    assertEquals(short.str("myhostname"), "vm.localdomain");
    assertEquals(short.str("mydomain"), "localdomain");
    const withDomain = makeConfig("/x", "mydomain = foo.org\n", { hostname: "vm" });
    assertEquals(withDomain.str("myhostname"), "vm.foo.org");
    assertEquals(cfg("myhostname = a.b.c\n").str("mydomain"), "b.c");
    assertEquals(cfg("myhostname = single\n").str("mydomain"), "localdomain");
    assertEquals(makeConfig("/x", "").str("myhostname"), "localhost.localdomain");
  });
  await t.step("compatibility_level expressions in defaults", () => {
    assertEquals(cfg("").str("relay_domains"), "mx.example.org, localhost.example.org, localhost");
    assertEquals(cfg("").str("mynetworks_style"), "subnet");
    const c = cfg("compatibility_level = 3.6\n");
    assertEquals(c.str("relay_domains"), "");
    assertEquals(c.str("mynetworks_style"), "host");
    assertEquals(c.bool("append_dot_mydomain"), false);
    assertEquals(c.list("smtpd_relay_restrictions"), [
      "permit_mynetworks",
      "permit_sasl_authenticated",
      "defer_unauth_destination",
    ]);
    assertEquals(cfg("").bool("append_dot_mydomain"), true);
  });
  await t.step("mynetworks default: the loopback network per mynetworks_style", () => {
    assertEquals(cfg("").str("mynetworks"), "127.0.0.0/8 [::1]/128");
    assertEquals(cfg("compatibility_level = 3.6\n").str("mynetworks"), "127.0.0.1/32 [::1]/128");
    assertEquals(cfg("mynetworks_style = class\n").str("mynetworks"), "127.0.0.0/8 [::1]/128");
    assertEquals(cfg("mynetworks = 10.0.0.0/8\n").str("mynetworks"), "10.0.0.0/8");
  });
  await t.step("myorigin = /path is the file's first line (files come from loadConfig)", () => {
    const files = { "/etc/mailname": "  mail.example.org \nsecond line\n" };
    const c = makeConfig("/x", "myorigin = /etc/mailname\nrelayhost = $myorigin\n", { files });
    assertEquals(c.str("myorigin"), "mail.example.org");
    assertEquals(c.str("relayhost"), "/etc/mailname"); // $myorigin stays the path, as in Postfix
    assertEquals(
      makeConfig("/x", "myorigin = /$mydomain\n", {
        hostname: "a.b.c",
        files: { "/b.c": "o.example\n" },
      }).str("myorigin"),
      "o.example",
    );
    assertThrows(
      () =>
        makeConfig("/x", "myorigin = /etc/mailname\n", { files: { "/etc/mailname": " \n" } })
          .str("myorigin"),
      ConfigError,
      "myorigin file /etc/mailname is empty",
    );
    assertThrows(
      () => makeConfig("/x", "myorigin = /etc/mailname\n").str("myorigin"),
      ConfigError,
      "myorigin file /etc/mailname",
    );
    assertThrows(
      () => cfg("myorigin = a.example b.example\n").str("myorigin"),
      ConfigError,
      "myorigin parameter setting must not contain multiple values: a.example b.example",
    );
  });
  await t.step("overrides win over main.cf and count as set", () => {
    const c = cfg("syslog_name = a\n", { syslog_name: "b", smtpd_timeout: "10" });
    assertEquals(c.str("syslog_name"), "b");
    assertEquals(c.isSet("smtpd_timeout"), true);
    assertEquals(c.isSet("relayhost"), false);
    assertEquals([...c.explicit().keys()], ["syslog_name", "smtpd_timeout"]);
  });
  await t.step("expansion loops are ConfigErrors", () => {
    const c = cfg("myhostname = $mydomain\n");
    assertThrows(() => c.str("myhostname"), ConfigError, "loop");
    assertThrows(() => cfg("relayhost = $relayhost\n").str("relayhost"), ConfigError, "loop");
  });
});

Deno.test("Config typed accessors", async (t) => {
  await t.step("int", () => {
    assertEquals(cfg("").int("hopcount_limit"), 50);
    assertEquals(cfg("").int("smtpd_hard_error_limit"), 20);
    assertEquals(cfg("stress = yes\n").int("smtpd_hard_error_limit"), 1);
    assertThrows(
      () => cfg("hopcount_limit = 5x\n").int("hopcount_limit"),
      ConfigError,
      "main.cf: bad numerical value for hopcount_limit: 5x",
    );
  });
  await t.step("time: suffixes and per-parameter default unit", () => {
    const c = cfg(
      "minimal_backoff_time = 10\nmaximal_backoff_time = 2m\nmaximal_queue_lifetime = 2\n" +
        "delay_warning_time = 4\nqueue_run_delay = 1w\nipc_idle = 3h\n",
    );
    assertEquals(c.time("minimal_backoff_time"), 10);
    assertEquals(c.time("maximal_backoff_time"), 120);
    assertEquals(c.time("maximal_queue_lifetime"), 2 * 86400);
    assertEquals(c.time("delay_warning_time"), 4 * 3600);
    assertEquals(c.time("queue_run_delay"), 7 * 86400);
    assertEquals(c.time("ipc_idle"), 3 * 3600);
    assertEquals(cfg("").time("bounce_queue_lifetime"), 5 * 86400);
    assertEquals(cfg("").time("smtpd_timeout"), 300);
    assertEquals(cfg("stress = yes\n").time("smtpd_timeout"), 10);
    assertThrows(() => cfg("ipc_idle = 5x\n").time("ipc_idle"), ConfigError, "bad time value");
    assertThrows(() => cfg("ipc_idle = -5\n").time("ipc_idle"), ConfigError, "ipc_idle");
  });
  await t.step("ranges as Postfix's tables, in Postfix's words", () => {
    assertThrows(
      () => cfg("smtpd_timeout = 0\n").time("smtpd_timeout"),
      ConfigError,
      "invalid smtpd_timeout: 0 (min 1)",
    );
    assertThrows(
      () => cfg("maximal_queue_lifetime = 101d\n").time("maximal_queue_lifetime"),
      ConfigError,
      "invalid maximal_queue_lifetime: 8726400 (max 8640000)",
    );
    assertEquals(cfg("maximal_queue_lifetime = 0\n").time("maximal_queue_lifetime"), 0);
    assertThrows(
      () => cfg("smtpd_recipient_limit = -5\n").int("smtpd_recipient_limit"),
      ConfigError,
      "invalid smtpd_recipient_limit parameter value -5 < 1",
    );
    assertThrows(
      () => cfg("line_length_limit = 100\n").int("line_length_limit"),
      ConfigError,
      "invalid line_length_limit parameter value 100 < 512",
    );
    assertThrows(
      () => cfg("header_size_limit = 0\n").size("header_size_limit"),
      ConfigError,
      "invalid header_size_limit parameter value 0 < 1",
    );
    assertEquals(cfg("smtpd_error_sleep_time = 0\n").time("smtpd_error_sleep_time"), 0);
  });
  await t.step("size", () => {
    assertEquals(cfg("").size("message_size_limit"), 10240000);
    assertThrows(() => cfg("message_size_limit = 10m\n").size("message_size_limit"), ConfigError);
  });
  await t.step("bool", () => {
    assertEquals(cfg("disable_vrfy_command = YES\n").bool("disable_vrfy_command"), true);
    assertEquals(cfg("").bool("disable_vrfy_command"), false);
    assertThrows(
      () => cfg("disable_vrfy_command = true\n").bool("disable_vrfy_command"),
      ConfigError,
      "bad boolean value",
    );
  });
  await t.step("list", () => {
    assertEquals(cfg("").list("mydestination"), [
      "mx.example.org",
      "localhost.example.org",
      "localhost",
    ]);
    assertEquals(cfg("mynetworks = a,,b  c,\n  d\n").list("mynetworks"), ["a", "b", "c", "d"]);
    assertEquals(cfg("").list("relayhost"), []);
  });
});

/** Settings a Postwarden main.cf needs; the tests add to them. */
const BASE = "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8\nlocal_recipient_maps =\n" +
  "alias_maps =\n";

Deno.test("Config warnings", async (t) => {
  await t.step("duplicates, unused names and ignored Postfix parameters", () => {
    const c = cfg(
      BASE +
        "a = 1\na = 2\ndebug_peer_level = 3\nmystery = x\nused = y\nrelayhost = $used\n" +
        "relay_destination_concurrency_limit = 3\nmytransport_destination_recipient_limit = 2\n",
    );
    assertEquals(c.warnings, [
      "main.cf, line 6: overriding earlier entry: a=1",
      "main.cf: unused parameter: a=2",
      "main.cf: unused parameter: mystery=x",
      "parameter debug_peer_level is not supported by Postwarden and is ignored: " +
      "it only changes what is logged or shown, not what is accepted or delivered",
    ]);
  });
  await t.step("restriction classes are used parameters", () => {
    const c = cfg(
      BASE + "smtpd_restriction_classes = strict\nstrict = reject\nloose = permit\n",
    );
    assertEquals(c.warnings, ["main.cf: unused parameter: loose=permit"]);
  });
  await t.step("a Postfix parameter set to Postfix's default is not reported", () => {
    assertEquals(
      cfg(BASE + "smtp_tls_security_level =\nbiff = yes\nheader_checks =\n").warnings,
      [],
    );
  });
});

Deno.test("parameter table", async (t) => {
  await t.step("every table name is a Postfix name, except postwarden_* additions", () => {
    const postfix = new Set(POSTFIX_NAMES);
    assertEquals(
      [...PARAMS.values()].filter((p) =>
        !postfix.has(p.name) && !p.name.startsWith("postwarden_") && !p.postfix
      ).map((p) => p.name),
      [],
    );
    // Names of later Postfix releases are not in 3.7's list.
    for (const p of PARAMS.values()) {
      if (p.postfix) assertEquals(postfix.has(p.name), false, p.name);
    }
  });
  await t.step("every default is within its range", () => {
    const c = cfg("");
    for (const p of PARAMS.values()) {
      if (p.type === "int" || p.type === "time" || p.type === "size") c[p.type](p.name);
      if (p.min !== undefined || p.max !== undefined) {
        assertEquals(["int", "time", "size"].includes(p.type), true, p.name);
      }
    }
  });
  await t.step("time parameters have a unit, others do not", () => {
    for (const p of PARAMS.values()) {
      assertEquals(p.type === "time", p.timeUnit !== undefined, p.name);
    }
  });
  await t.step("every default parses with its accessor", () => {
    const c = cfg("");
    for (const p of PARAMS.values()) {
      if (p.type === "string") c.str(p.name);
      else c[p.type](p.name);
    }
  });
  await t.step("POSTFIX_NAMES is sorted and unique", () => {
    const sorted = [...new Set(POSTFIX_NAMES)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    assertEquals([...POSTFIX_NAMES], sorted);
  });
});

Deno.test("loadConfig and configDirFrom", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("reads dir/main.cf", async () => {
      await Deno.writeTextFile(`${dir}/main.cf`, "myhostname = a.b\n");
      const c = await loadConfig(dir, { hostname: "ignored" });
      assertEquals(c.str("mydomain"), "b");
      assertEquals(c.dir, dir);
    });
    await t.step("reads the file myorigin names", async () => {
      await Deno.writeTextFile(`${dir}/mailname`, "mail.example.org\n");
      await Deno.writeTextFile(`${dir}/main.cf`, `myorigin = ${dir}/mailname\n`);
      const c = await loadConfig(dir, { hostname: "h" });
      assertEquals(c.str("myorigin"), "mail.example.org");
      assertEquals(c.raw("myorigin"), `${dir}/mailname`);
      await Deno.writeTextFile(`${dir}/main.cf`, `myorigin = ${dir}/nofile\n`);
      const missing = await loadConfig(dir, { hostname: "h" });
      assertThrows(
        () => missing.str("myorigin"),
        ConfigError,
        `myorigin file ${dir}/nofile: No such file or directory`,
      );
    });
    await t.step("missing main.cf names the file", async () => {
      const err = await loadConfig(`${dir}/none`).then(() => undefined, (e) => e);
      assertEquals(err instanceof ConfigError, true);
      assertEquals(err.message, `open ${dir}/none/main.cf: No such file or directory`);
    });
    await t.step("-c, then MAIL_CONFIG, then the repo's conf/", () => {
      assertEquals(configDirFrom({ c: "/a/b/" }, { MAIL_CONFIG: "/m" }), "/a/b");
      assertEquals(configDirFrom({}, { MAIL_CONFIG: "/m" }), "/m");
      assertEquals(configDirFrom({ c: "rel" }), `${Deno.cwd()}/rel`);
      const repoConf = new URL("../../conf", import.meta.url).pathname;
      assertEquals(configDirFrom({}), repoConf);
      assertEquals(configDirFrom({}, {}), repoConf);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
