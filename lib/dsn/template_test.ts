import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  BUILTIN_TEMPLATE_FILE,
  builtinTemplates,
  dumpTemplates,
  expandTemplateText,
  parseTemplateFile,
  TemplateError,
} from "./template.ts";

const TIMES = { delay_warning_time: 4 * 3600, maximal_queue_lifetime: 5 * 86400 };
const params = (name: string) =>
  ({ myhostname: "mx.example.com", ctl: "a\tb\x01c" } as Record<string, string>)[name];

function problems(text: string, known: (n: string) => boolean = () => true): string[] {
  try {
    parseTemplateFile(text, "/etc/bounce.cf", known);
    return [];
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    return e.problems;
  }
}

const template = (name: string, lines: string[]) => [`${name} = <<EOF`, ...lines, "EOF"].join("\n");

Deno.test("bounce templates", async (t) => {
  await t.step("the built-in templates print back as Postfix's postconf -t", () => {
    assertEquals(dumpTemplates(builtinTemplates()).join("\n") + "\n", BUILTIN_TEMPLATE_FILE);
  });

  await t.step("expansion: $name ${name} $(name), $$, time units, control characters", () => {
    const t = parseTemplateFile(
      template("success_template", [
        "Subject: s",
        "",
        "$myhostname ${myhostname} $(myhostname) $$ $$$$x",
        "$delay_warning_time_hours h = $delay_warning_time_minutes m, " +
        "$maximal_queue_lifetime_weeks w $maximal_queue_lifetime_days d",
        "[$ctl]",
      ]),
      "/etc/bounce.cf",
    ).success;
    assertEquals(expandTemplateText(t, params, TIMES), [
      "mx.example.com mx.example.com mx.example.com $ $$x",
      "4 h = 240 m, 0 w 5 d",
      "[a?b?c]",
    ]);
  });

  await t.step("each problem is reported with the file, and none is skipped", () => {
    assertEquals(problems(template("bogus_template", ["Subject: x", "", "y"])), [
      "/etc/bounce.cf, line 1: unknown template name: bogus_template",
    ]);
    assertEquals(problems(template("failure_template", ["X-Foo: x", "", "y"])), [
      '/etc/bounce.cf, line 1: unknown "X-Foo" header label in failure template',
    ]);
    assertEquals(problems(template("success_template", ["Postmaster-Subject: x", "", "y"])), [
      '/etc/bounce.cf, line 1: inapplicable "Postmaster-Subject" header label in success template',
    ]);
    assertEquals(problems(template("failure_template", ["Subject:", "", "y"])), [
      '/etc/bounce.cf, line 1: empty "Subject" header value in failure template',
    ]);
    assertEquals(problems(template("failure_template", ["Subject: x", ""])), [
      "/etc/bounce.cf, line 1: missing message text in failure template",
    ]);
    assertEquals(problems(template("failure_template", ["Subject: Grüße", "", "y"])), [
      '/etc/bounce.cf, line 1: non-ASCII "Subject" header value in failure template',
    ]);
    assertEquals(problems(template("failure_template", ["", "Grüße"])), [
      "/etc/bounce.cf, line 1: 8-bit message text with charset us-ascii " +
      "(specify a charset other than us-ascii) in failure template",
    ]);
    assertEquals(problems("failure_template = <<EOF\nSubject: x\n\ny\n"), [
      '/etc/bounce.cf, line 1: missing "EOF" end marker',
    ]);
    assertEquals(problems("failure_template = <<\n"), [
      "/etc/bounce.cf, line 1: missing end marker after <<",
    ]);
    assertEquals(problems("no equals sign\n"), [
      "/etc/bounce.cf, line 1: missing '=' after attribute name: \"no equals sign\"",
    ]);
    assertEquals(
      problems(
        template("delay_template", ["", "$nosuch and $delay_warning_time_fortnights"]),
        (n) => n !== "nosuch",
      ),
      ["/etc/bounce.cf: undefined $name in delay template: $nosuch and $delay_warning_time_fortnights"],
    );
    assertEquals(problems(template("delay_template", ["", "$delay_warning_time_fortnights"])), [
      '/etc/bounce.cf: unrecognized suffix "fortnights" in parameter ' +
      '"delay_warning_time_fortnights" in delay template: $delay_warning_time_fortnights',
    ]);
    assertEquals(problems(template("delay_template", ["", "${unclosed"])), [
      "/etc/bounce.cf: bad $name syntax in delay template: ${unclosed",
    ]);
  });

  await t.step("what a file leaves out is built in; an end marker of its own", () => {
    const ts = parseTemplateFile(
      "# comment\n\n  delay_template = <<END\nsubject: Still trying\n\n\ntext\nEND\n",
      "/etc/bounce.cf",
    );
    assertEquals(ts.failure, builtinTemplates().failure);
    assertEquals(
      [ts.delay.subject, ts.delay.postmasterSubject, ts.delay.from, ts.delay.text],
      [
        "Still trying",
        "Postmaster Warning: Delayed Mail",
        "Mail Delivery System <MAILER-DAEMON>",
        ["text"],
      ],
    );
  });
});
