/** Tests of the "_mta-sts" TXT record (RFC 8461 3.1) and the field splitter shared with TLS-RPT. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { parseStsRecord, recordFields } from "./record.ts";

Deno.test("lib/mtasts parseStsRecord", async (t) => {
  await t.step("valid records: the RFC's example, spacing, extensions, split strings", () => {
    const cases: [string[][], string][] = [
      [[["v=STSv1; id=20160831085700Z;"]], "20160831085700Z"],
      [[["v=STSv1;id=1"]], "1"],
      [[["v=STSv1 ;\tid=abc ; ext=x-y.z;"]], "abc"],
      [[["v=STSv1; ext=1; id=Z9"]], "Z9"],
      [[["v=STSv1; id=", "2024"]], "2024"], // character strings are joined
      [[["v=STSv1; id=first; id=second"]], "first"], // the first one counts
      [[["v=spf1 -all"], ["v=STSv1; id=x"], ["other"]], "x"], // other records ignored
      [[["v=STSv1; id=" + "a".repeat(32)]], "a".repeat(32)],
    ];
    for (const [txts, id] of cases) {
      assertEquals(parseStsRecord(txts), { id }, JSON.stringify(txts));
    }
  });

  await t.step("invalid or ambiguous: null", () => {
    for (
      const txts of [
        [],
        [["v=spf1 -all"]],
        [["v=STSv1; id=1"], ["v=STSv1; id=2"]], // two records: none is used
        [["v=STSv1; id=1"], ["v=STSv1; id=1"]],
        [["v=STSv1"]],
        [["v=STSv1;"]],
        [["v=STSv1; "]],
        [["v=STSv1; ext=1"]], // no id
        [["v=STSv1; id="]],
        [["v=STSv1; id=" + "a".repeat(33)]],
        [["v=STSv1; id=a-b"]],
        [["v=STSv1; id=1 2"]],
        [["v=STSv1;; id=1"]],
        [["v=STSv1; id=1;;"]],
        [["v=STSv10; id=1"]],
        [["v=stsv1; id=1"]], // case-sensitive
        [[" v=STSv1; id=1"]],
        [["v=STSv1 id=1"]],
        [["v=STSv1; ID=1"]], // an extension named ID, then no id
        [["v=STSv1; id=1; bad ext=1"]],
        [["v=STSv1; id=1; x=a;b"]],
        [["v=STSv1; id=1; x="]],
        [["v=STSv1; id=1\r\n"]],
      ]
    ) {
      assertEquals(parseStsRecord(txts), null, JSON.stringify(txts));
    }
  });

  await t.step("hostile: long runs of spaces are linear work", () => {
    const start = performance.now();
    const spaces = " ".repeat(60_000);
    assertEquals(parseStsRecord([[`v=STSv1;${spaces}id=1${spaces}x`]]), null);
    assertEquals(parseStsRecord([[`v=STSv1;${spaces}id=1${spaces};`]]), { id: "1" });
    assertEquals(recordFields([[`v=STSv1${spaces};${spaces}`]], "v=STSv1"), null);
    assertEquals(performance.now() - start < 500, true);
  });
});
