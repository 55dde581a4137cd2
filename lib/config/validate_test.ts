import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { loadConfig, makeConfig } from "./config.ts";
import { overrideProblems, validateConfig } from "./validate.ts";
import { ignorableNames } from "./ignorable.ts";
import { PARAMS } from "./params.ts";
import { supportProblems } from "./support.ts";

/** What a Postwarden main.cf needs beyond Postfix's defaults (conf/main.cf sets the same). */
const BASE = "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8\nlocal_recipient_maps =\n" +
  "alias_maps =\n";
const errors = (text: string) => validateConfig(makeConfig("/etc/x", BASE + text));

Deno.test("validateConfig", async (t) => {
  await t.step("a Postwarden configuration is valid", () => {
    assertEquals(errors(""), []);
  });
  await t.step("the embedded conf/main.cf is valid", async () => {
    const conf = new URL("../../conf", import.meta.url).pathname;
    assertEquals(validateConfig(await loadConfig(conf, { hostname: "mx.example.org" })), []);
  });
  await t.step("Postfix's defaults are refused where Postwarden cannot honour them", () => {
    const bad = validateConfig(makeConfig("/etc/x", ""));
    assertEquals(bad.length, 1, bad.join("\n"));
    // compatibility_level 0: no smtpd_relay_restrictions; Postfix will not run like that either.
    assertMatch(bad[0], /specify at least one working instance of: reject_unauth_destination/);
  });
  await t.step(
    "bounce_template_file: read with the configuration, a bad one stops the start",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "validate-templates-" });
      try {
        await Deno.writeTextFile(
          `${dir}/main.cf`,
          BASE + "bounce_template_file = bounce.cf\n",
        );
        assertEquals(validateConfig(await loadConfig(dir, { hostname: "mx" })), [
          `bounce_template_file: ${dir}/bounce.cf: No such file or directory`,
        ]);
        await Deno.writeTextFile(`${dir}/bounce.cf`, "failure_template = <<EOF\n\n$nosuch\nEOF\n");
        assertEquals(validateConfig(await loadConfig(dir, { hostname: "mx" })), [
          `bounce_template_file: ${dir}/bounce.cf: undefined $name in failure template: $nosuch`,
        ]);
        await Deno.writeTextFile(
          `${dir}/bounce.cf`,
          "failure_template = <<EOF\n\n$mail_name\nEOF\n",
        );
        const config = await loadConfig(dir, { hostname: "mx" });
        assertEquals(validateConfig(config), []);
        assertEquals(config.readFiles(), {
          [`${dir}/bounce.cf`]: "failure_template = <<EOF\n\n$mail_name\nEOF\n",
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
  await t.step("names each bad value", () => {
    const bad = errors(
      "message_size_limit = 10m\ndisable_vrfy_command = maybe\nqueue_run_delay = soon\n",
    );
    assertEquals(bad.length, 3, bad.join("\n"));
    assertMatch(bad.join("\n"), /message_size_limit/);
    assertMatch(bad.join("\n"), /disable_vrfy_command/);
    assertMatch(bad.join("\n"), /queue_run_delay/);
  });
  await t.step("values out of Postfix's range, in Postfix's words", () => {
    assertEquals(errors("smtpd_timeout = 0\nsmtpd_recipient_limit = -5\n"), [
      "invalid smtpd_timeout: 0 (min 1)",
      "invalid smtpd_recipient_limit parameter value -5 < 1",
    ]);
    assertEquals(errors("smtpd_recipient_overshoot_limit = 0\n"), [
      "invalid smtpd_recipient_overshoot_limit parameter value 0 < 1",
    ]);
  });
  await t.step("expansion loops are reported, not hung on", () => {
    assertEquals(errors("relayhost = $relayhost\n").length, 1);
  });
  await t.step("settings that would let mail through or elsewhere stop the start", () => {
    const cases: [string, RegExp][] = [
      ["smtpd_tls_security_level = bogus", /^invalid smtpd_tls_security_level value: "bogus"/],
      ["smtpd_tls_req_ccert = yes", /^smtpd_tls_req_ccert = yes: .*private key/],
      [
        "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = private/auth\n" +
        "smtpd_sasl_mechanism_filter = !external, hash:/etc/postfix/mechs",
        /^smtpd_sasl_mechanism_filter: "hash:\/etc\/postfix\/mechs": lookup tables/,
      ],
      [
        "smtpd_relay_restrictions = permit_tls_clientcerts, reject_unauth_destination",
        /^smtpd_relay_restrictions: restriction "permit_tls_clientcerts" is not supported .*private key/,
      ],
      [
        "smtpd_client_restrictions = check_ccert_access hash:/etc/postfix/ccert, permit",
        /^smtpd_client_restrictions: restriction "check_ccert_access" is not supported/,
      ],
      [
        "smtpd_recipient_restrictions = PERMIT_TLS_ALL_CLIENTCERTS, reject_unauth_destination",
        /^smtpd_recipient_restrictions: restriction "PERMIT_TLS_ALL_CLIENTCERTS" is not supported/,
      ],
      ["smtpd_tls_eccert_file = /etc/ec.pem", /^smtpd_tls_eccert_file = \/etc\/ec.pem/],
      ["tls_high_cipherlist = AES128", /^tls_high_cipherlist = AES128/],
      [
        "smtpd_tls_eecdh_grade = ultra",
        /^smtpd_tls_eecdh_grade = ultra: .*"auto", "strong" or "none"/,
      ],
      [
        "smtpd_tls_security_level = may\nsmtpd_tls_protocols = TLSv1, TLSv1.1",
        /^smtpd_tls_protocols = TLSv1, TLSv1.1: allows no protocol/,
      ],
      [
        "smtpd_enforce_tls = yes\nsmtpd_tls_mandatory_protocols = <=TLSv1.1",
        /^smtpd_tls_mandatory_protocols = <=TLSv1.1: allows no protocol/,
      ],
      ["smtpd_use_tls = yes\nsmtpd_tls_ciphers = null", /^smtpd_tls_ciphers = null: not supported/],
      ["smtpd_use_tls = yes\nsmtpd_tls_ciphers = strong", /^invalid smtpd_tls_ciphers value/],
      [
        "smtpd_use_tls = yes\nsmtpd_tls_exclude_ciphers = RC4, AES256",
        /^smtpd_tls_exclude_ciphers: "AES256": not supported .*ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384/,
      ],
      [
        "smtpd_use_tls = yes\nsmtpd_tls_exclude_ciphers = FANCY",
        /^smtpd_tls_exclude_ciphers: "FANCY": not a cipher/,
      ],
      [
        "smtpd_tls_security_level = encrypt\nsmtpd_tls_mandatory_exclude_ciphers = CHACHA20",
        /^smtpd_tls_mandatory_exclude_ciphers: "CHACHA20": not supported/,
      ],
      [
        "smtp_tls_security_level = dane",
        /^smtp_tls_security_level = dane needs smtp_dns_support_level = dnssec/,
      ],
      [
        "smtp_tls_force_insecure_host_tlsa_lookup = yes",
        /smtp_tls_force_insecure_host_tlsa_lookup/,
      ],
      ["smtpd_proxy_filter = 127.0.0.1:10024", /^smtpd_proxy_filter = /],
      // Bounces would go unfiltered: content_filter does not apply to internal mail.
      ["internal_mail_filter_classes = bounce", /^internal_mail_filter_classes = bounce/],
      ["smtpd_milter_maps = cidr:/etc/postfix/milters", /^smtpd_milter_maps = /],
      ["non_smtpd_milters = unix:", /^non_smtpd_milters: /],
      ["smtpd_milters = inet:127.0.0.1", /^smtpd_milters: /],
      ["smtpd_milters = inet:127.0.0.1:8891\nmilter_default_action = bounce", /^smtpd_milters: /],
      ["postscreen_greet_action = reject", /^postscreen_greet_action: bad action "reject"/],
      ["postscreen_dnsbl_sites = zen.example*x", /^postscreen_dnsbl_sites: bad item/],
      ["postscreen_dnsbl_sites = zen.example=127.0.0.999", /bad reply filter/],
      [
        "postscreen_cache_map = proxy:btree:/x",
        /^postscreen_cache_map = proxy:btree:\/x: only a local/,
      ],
      ["postscreen_access_list = permit", /^postscreen_access_list: "permit": specify/],
      [
        "postscreen_pipelining_enable = yes",
        /^postscreen_pipelining_enable = yes: not implemented/,
      ],
      ["postwarden_authentication_checks = spf, bimi", /"bimi" is not supported by Postwarden/],
      [
        "smtpd_recipient_restrictions = reject_unauth_destination, postwarden_reject_dmarc_fail",
        /^smtpd_recipient_restrictions: postwarden_reject_dmarc_fail needs the message content/,
      ],
      [
        "postwarden_dkim_signing_table = hash:/etc/x\npostwarden_dkim_key_directory = keys",
        /^postwarden_dkim_key_directory: "keys" is not an absolute path/,
      ],
      [
        "postwarden_arc_seal_domain = example.net",
        /^postwarden_arc_seal_domain needs arc in postwarden_authentication_checks/,
      ],
      [
        "postwarden_authentication_checks = arc\npostwarden_arc_seal_domain = example.net\n" +
        "postwarden_arc_seal_key = ../../etc/shadow",
        /^postwarden_arc_seal_key: "..\/..\/etc\/shadow" is not a file in postwarden_dkim_key_directory/,
      ],
      [
        "postwarden_dkim_internal_hosts = 10.0.0.0/33",
        /^postwarden_dkim_internal_hosts: bad mask length/,
      ],
      ["smtpd_sasl_auth_enable = yes", /^smtpd_sasl_type = cyrus: Cyrus SASL is not supported/],
      ["queue_minfree = 100000000", /^queue_minfree = 100000000: not implemented/],
      ["smtpd_forbid_bare_newline = strict", /^bad smtpd_forbid_bare_newline value: strict/],
      [
        "smtpd_forbid_bare_newline_exclusions = cidr:/etc/postfix/lf.cidr",
        /^smtpd_forbid_bare_newline_exclusions: /,
      ],
      [
        "smtpd_discard_ehlo_keyword_address_maps = nosuch:/x",
        /^smtpd_discard_ehlo_keyword_address_maps: table nosuch/,
      ],
      ["smtpd_forbidden_commands = GET nosuch:/x", /^smtpd_forbidden_commands: table nosuch/],
      ["mydestination = ldap:/etc/postfix/local_domains.cf", /^mydestination: table ldap:/],
      ["relay_domains = /etc/postfix/relay_domains", /^relay_domains: "\/etc/],
      [
        "smtpd_relay_restrictions = permit_mynetworks\nsmtpd_recipient_restrictions =",
        /^in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions/,
      ],
    ];
    for (const [line, re] of cases) {
      const bad = errors(line + "\n");
      assertEquals(bad.length, 1, `${line}: ${bad.join("\n")}`);
      assertMatch(bad[0], re);
    }
  });
  await t.step("harmless ones are warnings that name them", () => {
    const cases = [
      "smtp_tls_session_cache_timeout = 7200s",
      "smtpd_tls_security_level = verify",
      "smtpd_tls_CAfile = /etc/ssl/certs/ca-certificates.crt",
      "smtpd_tls_eecdh_grade = strong",
      "biff = no",
      "readme_directory = no",
      "smtputf8_autodetect_classes = all",
      "postscreen_watchdog_timeout = 20s",
      "smtp_delivery_slot_cost = 10",
      "smtpd_client_restrictions = reject_unverified_sender",
      "smtpd_recipient_restrictions = check_policy_service tcp:127.0.0.1:1, reject",
      "smtpd_helo_restrictions = check_policy_service { inet:127.0.0.1:9, timeout=soon }",
    ];
    for (const line of cases) {
      const c = makeConfig("/etc/x", BASE + line + "\n");
      assertEquals(validateConfig(c), [], line);
      const name = line.split(" ")[0];
      assert(c.warnings.some((w) => w.includes(name)), `${line}: ${c.warnings.join("\n")}`);
    }
  });
  await t.step("smtpd_tls_ask_ccert: a warning that says why certificates are not used", () => {
    const c = makeConfig("/etc/x", BASE + "smtpd_tls_ask_ccert = yes\n");
    assertEquals(validateConfig(c), []);
    assert(
      c.warnings.some((w) => /smtpd_tls_ask_ccert .*lib\/tls\/ccert\.ts/.test(w)),
      c.warnings.join("\n"),
    );
  });
  await t.step("check_ccert_access: its table is not reported as a restriction", () => {
    const c = makeConfig(
      "/etc/x",
      BASE + "smtpd_client_restrictions = check_ccert_access hash:/etc/postfix/ccert, permit\n",
    );
    const all = supportProblems(c).map((p) => p.message);
    assertEquals(all.filter((m) => m.includes("hash:/etc/postfix/ccert")), [], all.join("\n"));
  });
  await t.step("master.cf -o overrides are checked like main.cf", () => {
    const overrides = {
      smtpd_tls_security_level: "bogus",
      syslog_name: "postfix/submission",
      smtpd_client_restrictions: "permit_sasl_authenticated,reject_unverified_sender,reject",
    };
    const c = makeConfig("/etc/x", BASE + "queue_minfree = 5\n", { overrides });
    assertEquals(validateConfig(c).length, 2);
    const p = overrideProblems(c, overrides);
    assertEquals(p.fatal.length, 1, p.fatal.join("\n")); // not main.cf's queue_minfree
    assertMatch(p.fatal[0], /^invalid smtpd_tls_security_level value: "bogus"/);
    assertEquals(p.warnings.length, 1);
    assertMatch(p.warnings[0], /restriction "reject_unverified_sender" is not supported/);
    assertEquals(overrideProblems(c, {}), { fatal: [], warnings: [] });
  });
});

Deno.test("validateConfig: network lists as Postfix parses them", () => {
  assertEquals(
    errors("mynetworks = !127.0.0.2, 127.0.0.0/8, [::1]/128, [fd00::]/64, mx.example\n"),
    [],
  );
  assertEquals(errors("mynetworks = 127.0.0.5/0, 127.0.0.1/33, 1.2.3/24\n"), [
    'mynetworks: non-null host address bits in "127.0.0.5/0", perhaps you should use "0.0.0.0/0" instead',
    'mynetworks: bad mask length in "127.0.0.1/33"',
    'mynetworks: bad network value in "1.2.3/24"',
  ]);
  const tables = errors(
    "mynetworks = hash:/etc/postfix/network_table, /etc/postfix/networks, ::1/128\n",
  );
  assertEquals(tables.length, 3, tables.join("\n"));
  assertMatch(tables[0], /"hash:\/etc\/postfix\/network_table": lookup tables are not supported/);
  assertMatch(tables[1], /"\/etc\/postfix\/networks": files in network lists are not supported/);
  assertMatch(tables[2], /"::1\/128": lookup tables are not supported .*\[addr\]\/len/);
});

Deno.test("the allow-list of ignored parameters lists none that the table implements", () => {
  const both = ignorableNames().filter((n) => PARAMS.has(n));
  assertEquals(both, [], "remove them from ignorable.ts");
});

Deno.test("the parameter table declares each parameter once", async () => {
  const text = await Deno.readTextFile(new URL("./params.ts", import.meta.url));
  const names = [...text.matchAll(/^ {4}name: "([A-Za-z0-9_]+)",$/gm)].map((m) => m[1]);
  assertEquals(names.filter((n, i) => names.indexOf(n) !== i), []);
  assertEquals(names.length, PARAMS.size);
});

Deno.test("mynetworks host names need mynetworks in parent_domain_matches_subdomains", () => {
  const base = "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8, trusted.example\n";
  assertEquals(validateConfig(makeConfig("/etc/x", base)), []);
  const bad = validateConfig(
    makeConfig("/etc/x", base + "parent_domain_matches_subdomains = relay_domains\n"),
  );
  assertEquals(bad.length, 1, bad.join("\n"));
  assertMatch(bad[0], /host names match their subdomains/);
});

Deno.test("validateConfig: DNS list arguments", async (t) => {
  await t.step(
    "reply filters are accepted; malformed ones and postscreen weights stop the start",
    () => {
      assertEquals(
        errors("smtpd_client_restrictions = reject_rbl_client zen.example=127.0.0.[2..11;20]\n"),
        [],
      );
      const weight = errors("smtpd_client_restrictions = reject_rbl_client zen.example*2\n");
      assertEquals(weight.length, 1, weight.join("\n"));
      assertMatch(weight[0], /"\*weight" syntax is postscreen's; it is not supported/);
      const bad = errors(
        "smtpd_recipient_restrictions = reject_rhsbl_sender dbl.example=127.0.0.x, reject_unauth_destination\n",
      );
      assertEquals(bad.length, 1, bad.join("\n"));
      assertMatch(bad[0], /RBL reply error: bad address pattern "127\.0\.0\.x"/);
    },
  );
  await t.step("the list domain is not reported as an unsupported restriction", () => {
    const c = makeConfig(
      "/etc/x",
      BASE + "smtpd_client_restrictions = reject_rbl_client zen.example\n",
    );
    assertEquals(c.warnings.filter((w) => w.includes("zen.example")), []);
  });
  await t.step("a tempfail action other than defer or defer_if_permit is an error", () => {
    assertEquals(errors("unknown_address_tempfail_action = defer\n"), []);
    const bad = errors("reject_tempfail_action = later\n");
    assertEquals(bad.length, 2, bad.join("\n")); // both actions default to $reject_tempfail_action
    assertMatch(bad[0], /bad configuration: unknown_helo_hostname_tempfail_action = later/);
  });
});
