/**
 * `postwarden test --format junit` writes JUnit XML that the common JUnit
 * schema accepts: Jenkins xUnit's junit-10.xsd (tests/testdata/junit),
 * checked with xmllint. The reports are those of hand-made result lists
 * (passing and failing tests, several failures in one test, text with the
 * characters XML escapes or cannot hold, no tests at all, explain lines)
 * and of one real run of the sample configuration docs/examples/company
 * in this working tree (a testcase per sample test, none failed). Broken
 * documents fail the same check, so the check can fail.
 *
 * Needs xmllint (libxml2-utils): skipped loudly without it, a failure
 * under CI=true.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { havePeer, run } from "../helpers/peers.ts";
import { report, type TestResult } from "../../lib/testrun/run.ts";

const XMLLINT = "/usr/bin/xmllint";
const ROOT = new URL("../../", import.meta.url).pathname;
const SCHEMA = `${ROOT}tests/testdata/junit/junit-10.xsd`;
const SAMPLE = "docs/examples/company";

/** xmllint's verdict on a document: code 0 when it validates. */
function validate(xml: string): Promise<{ code: number; stderr: string }> {
  return run(XMLLINT, ["--noout", "--schema", SCHEMA, "-"], { stdin: xml });
}

async function assertValid(xml: string): Promise<void> {
  const v = await validate(xml);
  assertEquals(v.code, 0, `${v.stderr}\n${xml}`);
}

async function assertInvalid(xml: string, why: string): Promise<void> {
  const v = await validate(xml);
  assert(v.code !== 0, `validates, but should not:\n${xml}`);
  assertStringIncludes(v.stderr, why);
}

/** The string value of an XPath expression over a document, as a parser reads it. */
async function xpath(xml: string, expr: string): Promise<string> {
  const r = await run(XMLLINT, ["--xpath", `string(${expr})`, "-"], { stdin: xml });
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.replace(/\n$/, "");
}

const count = (xml: string, re: RegExp) => (xml.match(re) ?? []).length;

/** Characters XML 1.0 cannot hold, which the report drops: C0 controls, U+FFFE, a lone surrogate. */
const CONTROLS = "\u0000\u0001\u0007\u0008\u000b\u000c\u001b\u001f\ufffe\ud800";
/** The five characters XML escapes, and text beyond ASCII. */
const HOSTILE = `<a href="x">&amp; 'q' ]]> Grüße ✓ 日本 😀`;

const passing: TestResult[] = [
  { name: "01_alias_to_local_user.dialog", ok: true, failures: [], ms: 120 },
  { name: "02_unknown_virtual_address.dialog", ok: true, failures: [], ms: 1_234_567 },
];

const failing: TestResult[] = [
  ...passing,
  {
    name: "03_no_open_relay.dialog",
    ok: false,
    failures: [
      "line 3: expected 554\n  got 250 2.1.5 Ok",
      "line 7: expected a log line matching /reject: RCPT/",
      "queued: expected no message, got one to <x@remote.example>",
    ],
    ms: 45,
  },
  { name: "04_office_relays.dialog", ok: false, failures: [], ms: 0 },
];

const hostile: TestResult[] = [
  {
    name: `05 ${HOSTILE}${CONTROLS}.dialog`,
    ok: false,
    failures: [`line 1: ${HOSTILE}\n  ${CONTROLS}got <>&"'`, `line 2: ${CONTROLS}`],
    ms: 3,
  },
  { name: `06 ${HOSTILE}.dialog`, ok: true, failures: [], ms: 4 },
];

const explained: TestResult[] = [
  {
    name: "07_helo_required.dialog",
    ok: true,
    failures: [],
    ms: 9,
    explain: ["explain: smtpd_helo_restrictions: reject_invalid_helo_hostname <x> & 'y'"],
  },
  {
    name: "08_catch_all_domain.dialog",
    ok: false,
    failures: ["line 4: expected 250"],
    ms: 9,
    explain: [`route: <a@b.example> -> local:alice (transport_maps "b.example")`, CONTROLS],
  },
];

Deno.test("interop: JUnit reports validate against Jenkins xUnit's junit-10.xsd", async (t) => {
  if (!havePeer(XMLLINT)) return;

  await t.step("every test passed", async () => {
    const xml = report(passing, "junit");
    await assertValid(xml);
    assertEquals(count(xml, /<testcase /g), 2);
    assertEquals(count(xml, /<failure /g), 0);
  });

  await t.step("failing tests, one with several failures, one with none given", async () => {
    const xml = report(failing, "junit");
    await assertValid(xml);
    assertEquals(count(xml, /<testcase /g), 4);
    assertEquals(count(xml, /<failure /g), 2);
    assertEquals(await xpath(xml, "/testsuites/testsuite/@failures"), "2");
    assertEquals(
      await xpath(xml, "//testcase[@name='03_no_open_relay.dialog']/failure"),
      failing[2].failures.join("\n"),
    );
  });

  await t.step("names and failures with < > & \" ', control characters and non-ASCII", async () => {
    const xml = report(hostile, "junit");
    await assertValid(xml);
    // A parser reads back the text, less the characters XML cannot hold.
    const kept = (s: string) => [...s].filter((c) => !CONTROLS.includes(c)).join("");
    assertEquals(await xpath(xml, "//testcase[1]/@name"), kept(hostile[0].name));
    assertEquals(await xpath(xml, "//testcase[2]/@name"), hostile[1].name);
    assertEquals(await xpath(xml, "//testcase[1]/failure"), kept(hostile[0].failures.join("\n")));
    assertEquals(await xpath(xml, "//testcase[1]/failure/@message"), `line 1: ${HOSTILE}`);
  });

  await t.step("no tests", async () => {
    const xml = report([], "junit");
    await assertValid(xml);
    assertEquals(await xpath(xml, "/testsuites/testsuite/@tests"), "0");
  });

  await t.step("with explain lines", async () => {
    await assertValid(report(explained, "junit"));
  });

  await t.step("the check fails on what the schema forbids", async () => {
    const xml = report(failing, "junit");
    await assertInvalid(
      xml.replace("</testsuite>", "<testresult/></testsuite>"),
      "This element is not expected",
    );
    await assertInvalid(
      xml.replace(/(<testcase [^>]*)name="[^"]*"/, "$1"),
      "The attribute 'name' is required but missing",
    );
    await assertInvalid(xml.replace(/time="[\d.]+"/, 'time="1 s"'), "attribute 'time'");
    await assertInvalid(xml.replace("&lt;", "<"), "parser error");
  });
});

Deno.test({
  name: "interop: a real `postwarden test --format junit` run of the sample validates",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (!havePeer(XMLLINT)) return;
    // The flags of deno.json's postwarden task, so this runs what `deno task postwarden` runs.
    const task: string[] = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`))
      .tasks.postwarden.split(" ");
    assertEquals(task.slice(0, 2), ["deno", "run"]);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...task.slice(1), "test", "-c", SAMPLE, "--format", "junit"],
      cwd: ROOT,
      stdin: "null",
      signal: AbortSignal.timeout(300_000),
    }).output();
    const xml = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, `${new TextDecoder().decode(out.stderr)}\n${xml}`);

    const dialogs = [...Deno.readDirSync(`${ROOT}${SAMPLE}/tests`)]
      .filter((e) => e.isFile && e.name.endsWith(".dialog")).length;
    assert(dialogs >= 30, `${dialogs} tests in the sample`);
    assertEquals(count(xml, /<testcase /g), dialogs);
    assertEquals(count(xml, /<failure /g), 0);
    assertEquals(await xpath(xml, "/testsuites/testsuite/@tests"), String(dialogs));
    assertEquals(await xpath(xml, "/testsuites/testsuite/@failures"), "0");
    assertEquals(await xpath(xml, "/testsuites/@failures"), "0");
    await assertValid(xml);
  },
});
