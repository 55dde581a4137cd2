import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import {
  MILTER_PARAMETER_DEFAULTS,
  parseMilterList,
  parseTime,
  resolveMilterSettings,
} from "./config.ts";

Deno.test("milter config: smtpd_milters lists", async (t) => {
  await t.step("commas and/or white space", () => {
    assertEquals(parseMilterList(""), []);
    assertEquals(parseMilterList("  ,\n "), []);
    assertEquals(
      parseMilterList("inet:127.0.0.1:8891,unix:/run/a.sock \n\tlocal:private/b ,, inet:[::1]:10"),
      [
        {
          name: "inet:127.0.0.1:8891",
          endpoint: { kind: "inet", host: "127.0.0.1", port: 8891 },
          overrides: {},
        },
        {
          name: "unix:/run/a.sock",
          endpoint: { kind: "unix", path: "/run/a.sock" },
          overrides: {},
        },
        { name: "local:private/b", endpoint: { kind: "unix", path: "private/b" }, overrides: {} },
        { name: "inet:[::1]:10", endpoint: { kind: "inet", host: "::1", port: 10 }, overrides: {} },
      ],
    );
    assertEquals(parseMilterList("inet:milter.example.com:65535")[0].endpoint, {
      kind: "inet",
      host: "milter.example.com",
      port: 65535,
    });
  });

  await t.step("braced entries with per-milter settings", () => {
    assertEquals(
      parseMilterList(
        "{ inet:localhost:8891, connect_timeout=10s, default_action=accept }, unix:/x " +
          "{unix:/y,command_timeout=1m content_timeout=5 { protocol = 4 no_header_reply }}",
      ),
      [
        {
          name: "inet:localhost:8891",
          endpoint: { kind: "inet", host: "localhost", port: 8891 },
          overrides: { connect_timeout: "10s", default_action: "accept" },
        },
        { name: "unix:/x", endpoint: { kind: "unix", path: "/x" }, overrides: {} },
        {
          name: "unix:/y",
          endpoint: { kind: "unix", path: "/y" },
          overrides: {
            command_timeout: "1m",
            content_timeout: "5",
            protocol: "4 no_header_reply",
          },
        },
      ],
    );
  });

  await t.step("errors name the bad part", () => {
    const bad: [string, string][] = [
      ["inet6:[::1]:8891", 'invalid transport name "inet6"'],
      ["tcp:1.2.3.4:5", 'invalid transport name "tcp"'],
      ["/run/milter.sock", 'needs transport:endpoint instead of "/run/milter.sock"'],
      ["inet:127.0.0.1", 'milter service "inet:127.0.0.1"'],
      ["inet:127.0.0.1:0", 'milter service "inet:127.0.0.1:0"'],
      ["inet:127.0.0.1:65536", "inet:127.0.0.1:65536"],
      ["inet:localhost:milter", "numeric port"],
      ["inet:::1:8891", 'milter service "inet:::1:8891"'],
      ["unix:", 'milter service "unix:": bad socket path'],
      ["{ inet:a:1, connect_timeout=10s", "missing '}'"],
      ["inet:a:1 }", "unexpected '}'"],
      ["{}", 'empty milter definition "{}"'],
      ["{ inet:a:1 }x", "text after '}'"],
      ["{ inet:a:1, timeout=10s }", 'unknown attribute name "timeout"'],
      ["{ inet:a:1, connect_timeout }", "missing '=' after attribute name"],
      ["{ inet:a:1, connect_timeout=0s }", 'connect_timeout: bad time value "0s"'],
      ["{ inet:a:1, command_timeout=10x }", 'command_timeout: bad time value "10x"'],
      ["{ inet:a:1, default_action=bounce }", 'bad default action "bounce"'],
      ["{ inet:a:1, protocol=5 }", 'bad protocol information "5"'],
      ["{ inet:a:1, protocol=no_header_reply }", "no protocol version"],
      ["{ inet:a:1, { protocol = 4 6 } }", 'bad protocol information "6"'],
    ];
    for (const [value, message] of bad) {
      assertThrows(() => parseMilterList(value), Error, message);
    }
  });
});

Deno.test("milter config: settings", async (t) => {
  const [plain, braced, relative] = parseMilterList(
    "inet:127.0.0.1:8891 " +
      "{ inet:127.0.0.1:8892, connect_timeout=10s, command_timeout=2m, content_timeout=1h, " +
      "default_action=Quarantine, protocol=2 } unix:private/milter",
  );

  await t.step("Postfix's defaults", () => {
    const s = resolveMilterSettings(plain, () => undefined);
    assertEquals(s, {
      name: "inet:127.0.0.1:8891",
      endpoint: { kind: "inet", host: "127.0.0.1", port: 8891 },
      connectTimeoutMs: 30_000,
      commandTimeoutMs: 30_000,
      contentTimeoutMs: 300_000,
      defaultAction: "tempfail",
      protocol: 6,
      noHeaderReply: false,
      macros: {
        connect: ["j", "{daemon_name}", "{daemon_addr}", "v", "_"],
        helo: ["{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"],
        mail: [
          "i",
          "{auth_type}",
          "{auth_authen}",
          "{auth_author}",
          "{mail_addr}",
          "{mail_host}",
          "{mail_mailer}",
        ],
        rcpt: ["i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"],
        data: ["i"],
        eoh: ["i"],
        eom: ["i"],
        unknown: [],
      },
    });
    // The same from a lookup that knows the defaults.
    assertEquals(resolveMilterSettings(plain, (n) => MILTER_PARAMETER_DEFAULTS[n]), s);
  });

  await t.step("main.cf values", () => {
    const params: Record<string, string> = {
      milter_connect_timeout: "5",
      milter_command_timeout: "1m",
      milter_content_timeout: "2h",
      milter_default_action: "accept",
      milter_protocol: "4, no_header_reply",
      milter_connect_macros: "j,{daemon_name}",
      milter_unknown_command_macros: "i",
      milter_data_macros: "",
    };
    const s = resolveMilterSettings(plain, (n) => params[n]);
    assertEquals(
      [s.connectTimeoutMs, s.commandTimeoutMs, s.contentTimeoutMs],
      [5000, 60_000, 7_200_000],
    );
    assertEquals([s.defaultAction, s.protocol, s.noHeaderReply], ["accept", 4, true]);
    assertEquals(s.macros.connect, ["j", "{daemon_name}"]);
    assertEquals(s.macros.unknown, ["i"]);
    assertEquals(s.macros.data, []);
    assertEquals(s.macros.eom, ["i"]);
  });

  await t.step("per-milter settings win", () => {
    const s = resolveMilterSettings(braced, (n) => n === "milter_protocol" ? "6" : undefined);
    assertEquals(
      [s.connectTimeoutMs, s.commandTimeoutMs, s.contentTimeoutMs],
      [10_000, 120_000, 3_600_000],
    );
    assertEquals([s.defaultAction, s.protocol, s.noHeaderReply], ["quarantine", 2, false]);
  });

  await t.step("a relative unix path is under queue_directory", () => {
    const q = (n: string) => n === "queue_directory" ? "/var/spool/postwarden/" : undefined;
    assertEquals(resolveMilterSettings(relative, q).endpoint, {
      kind: "unix",
      path: "/var/spool/postwarden/private/milter",
    });
    assertEquals(resolveMilterSettings(relative, () => undefined).endpoint, {
      kind: "unix",
      path: "private/milter",
    });
    assertEquals(resolveMilterSettings(relative, q).name, "unix:private/milter");
  });

  await t.step("a bad main.cf value names the parameter", () => {
    const bad: [string, string, string][] = [
      ["milter_connect_timeout", "soon", 'milter_connect_timeout: bad time value "soon"'],
      ["milter_content_timeout", "", 'milter_content_timeout: bad time value ""'],
      ["milter_default_action", "dunno", 'milter_default_action: bad default action "dunno"'],
      ["milter_protocol", "7", 'milter_protocol: bad protocol information "7"'],
    ];
    for (const [name, value, message] of bad) {
      assertThrows(
        () => resolveMilterSettings(plain, (n) => n === name ? value : undefined),
        Error,
        message,
      );
    }
  });

  await t.step("time values as Postfix reads them", () => {
    assertEquals(
      ["1", "30s", "5m", "2h", "1d", "1w"].map((v) => parseTime(v, "t")),
      [1000, 30_000, 300_000, 7_200_000, 86_400_000, 604_800_000],
    );
    for (const v of ["", "0", "1.5s", "-1", "1 s", "1ms", "s"]) {
      assertThrows(() => parseTime(v, "t"), Error, "t: bad time value");
    }
  });
});
