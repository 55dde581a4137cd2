/**
 * The parameters that sat in the parameter table read by nothing (issue 6):
 * setting each to a non-default value now either changes what Postwarden
 * does (tested where named, or here) or is reported by name, as a warning
 * (harmless to ignore) or a validateConfig error (Postwarden refuses to
 * start). Also: every row of the table says whether it is implemented.
 */
import { makeConfig, PARAMS, validateConfig } from "../../lib/config/mod.ts";
import { Qmgr } from "../../daemons/qmgr/qmgr.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { fakeService, writeQueueFile } from "../helpers/fake_service.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const BASE = "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8\nlocal_recipient_maps =\n" +
  "alias_maps =\n";

/** What setting the parameter does now. */
type Outcome =
  | { reported: "warning" | "error" }
  /** Changes behaviour; the test files that show it (they name the parameter). */
  | { tested: string[] };

const UNREAD: [name: string, value: string, outcome: Outcome][] = [
  ["mynetworks_style", "host", { tested: ["lib/config/config_test.ts"] }],
  [
    "relay_domains",
    "example.net",
    { tested: ["daemons/smtpd/testdata/relay_domains.dialog", "lib/config/validate_test.ts"] },
  ],
  ["append_dot_mydomain", "yes", {
    tested: ["lib/address/rewrite_test.ts", "tests/interop/resolve_test.ts"],
  }],
  ["compatibility_level", "2", { tested: ["lib/config/config_test.ts"] }],
  ["stress", "yes", { tested: ["lib/config/config_test.ts"] }],
  ["command_directory", "/opt/postfix/sbin", { reported: "warning" }],
  ["daemon_directory", "/opt/postfix/libexec", { reported: "warning" }],
  ["data_directory", "/var/db/postfix", { tested: ["tests/integration/postscreen_test.ts"] }],
  ["process_id_directory", "run", { reported: "warning" }],
  ["setgid_group", "maildrop", { reported: "warning" }],
  ["queue_minfree", "100000000", { reported: "error" }],
  ["initial_destination_concurrency", "2", { tested: ["daemons/qmgr/scheduler_test.ts"] }],
  ["max_use", "1000", { reported: "warning" }],
  [
    "smtpd_client_restrictions",
    "reject",
    {
      tested: [
        "daemons/smtpd/testdata/restriction_client_delayed.dialog",
        "daemons/smtpd/testdata/restriction_client_connect.dialog",
        "tests/integration/fail_closed_test.ts",
      ],
    },
  ],
  [
    "smtpd_helo_restrictions",
    "reject",
    {
      tested: [
        "daemons/smtpd/testdata/restriction_helo_delayed.dialog",
        "daemons/smtpd/testdata/restriction_helo_command.dialog",
      ],
    },
  ],
  [
    "smtpd_sender_restrictions",
    "reject",
    {
      tested: [
        "daemons/smtpd/testdata/restriction_sender_delayed.dialog",
        "daemons/smtpd/testdata/restriction_sender_command.dialog",
      ],
    },
  ],
  ["local_recipient_maps", "proxy:unix:passwd.byname", {
    tested: ["daemons/smtpd/recipients_test.ts", "tests/interop/resolve_test.ts"],
  }],
  ["alias_database", "hash:/etc/mail/aliases", { tested: ["commands/postmap_test.ts"] }],
  ["relay_transport", "lmtp:unix:private/dovecot-lmtp", {
    tested: ["lib/resolve/resolve_test.ts", "tests/interop/resolve_test.ts"],
  }],
  ["ipc_timeout", "60s", { reported: "warning" }],
  ["daemon_timeout", "600s", { reported: "warning" }],
  ["local_destination_concurrency_limit", "5", {
    tested: ["tests/integration/unread_params_test.ts"],
  }],
  ["local_destination_recipient_limit", "7", {
    tested: ["tests/integration/unread_params_test.ts"],
  }],
  ["append_at_myorigin", "no", { tested: ["daemons/cleanup/cleanup_test.ts"] }],
  ["max_idle", "600s", { tested: ["tests/integration/on_demand_test.ts"] }],
  ["delay_warning_time", "4h", { tested: ["daemons/qmgr/settle_test.ts"] }],
  ["smtpd_forbid_bare_newline", "reject", {
    tested: ["daemons/smtpd/testdata/bare_newline_reject.dialog"],
  }],
  ["smtpd_forbid_bare_newline", "no", {
    tested: ["daemons/smtpd/testdata/bare_newline_no.dialog"],
  }],
];

Deno.test("every parameter that was read by nothing changes behaviour or is reported", async (t) => {
  for (const [name, value, outcome] of UNREAD) {
    await t.step(`${name} = ${value}`, async () => {
      assert(PARAMS.has(name), `${name} is in the table`);
      assert(value !== PARAMS.get(name)!.default, "a non-default value");
      const config = makeConfig("/etc/x", `${BASE}${name} = ${value}\n`, {
        hostname: "mx.example",
      });
      const errors = validateConfig(config).filter((e) => e.includes(name));
      const warnings = config.warnings.filter((w) =>
        w.includes(name) && !w.includes("overriding earlier entry")
      );
      if ("reported" in outcome) {
        const found = outcome.reported === "error" ? errors : warnings;
        assertEquals(
          found.length,
          1,
          `reported as ${outcome.reported}:\n${[...errors, ...warnings].join("\n")}`,
        );
        assert(found[0].startsWith(`${name} = `), found[0]);
        if (outcome.reported === "warning") assertEquals(errors, []);
      } else {
        assertEquals([...errors, ...warnings], [], "implemented: nothing to report");
        for (const file of outcome.tested) {
          const text = await Deno.readTextFile(`${ROOT}${file}`);
          assert(text.includes(name), `${file} exercises ${name}`);
        }
      }
    });
  }
});

Deno.test("every row of the parameter table says whether it is implemented", () => {
  for (const p of PARAMS.values()) {
    assert(["implemented", "ignored", "refused"].includes(p.support), p.name);
    if (p.support !== "implemented") assert(p.note, `${p.name} says what Postwarden does instead`);
  }
});

Deno.test("qmgr reads local_destination_concurrency_limit and local_destination_recipient_limit", async () => {
  const root = await Deno.makeTempDir({ prefix: "unread-qmgr-" });
  const fake = await fakeService("qmgr", root, {
    mainCf: "mydestination = localhost\nlocal_destination_concurrency_limit = 5\n" +
      "local_destination_recipient_limit = 7\n",
  });
  const qmgr = new Qmgr(fake.ctx, []);
  try {
    const { queueId } = await writeQueueFile(
      fake.ctx.queue.dir("incoming"),
      { sender: "a@example.org" },
      [{ address: "u@localhost" }],
      "Subject: x\r\n\r\nx\r\n",
    );
    await qmgr.activate(queueId, "incoming");
    const local = qmgr.limits("local");
    assertEquals(local.concurrencyLimit, 5);
    assertEquals(local.recipientLimit, 7);
  } finally {
    await qmgr.stop(2_000);
    fake.abort.abort();
    await Deno.remove(root, { recursive: true });
  }
});
