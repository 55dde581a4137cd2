/**
 * The logger's line format, and that nothing a client sends can split or
 * forge a log record (Postfix's printable() masking).
 */
import fc from "fast-check";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { Logger, syslogTime } from "./mod.ts";

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = new Logger({
    program: "postwarden/smtpd",
    hostname: "mx",
    sinks: [(l) => lines.push(l)],
    now: () => new Date(2026, 10, 3, 7, 5, 9),
    pid: 42,
  });
  return { log, lines };
}

const PREFIX = "Nov  3 07:05:09 mx postwarden/smtpd[42]: ";

Deno.test("logger", async (t) => {
  await t.step("formats Postfix-style lines", () => {
    const { log, lines } = capture();
    log.info("connect from localhost[127.0.0.1]");
    log.warn("bad");
    assertEquals(lines, [
      "Nov  3 07:05:09 mx postwarden/smtpd[42]: connect from localhost[127.0.0.1]\n",
      "Nov  3 07:05:09 mx postwarden/smtpd[42]: warning: bad\n",
    ]);
  });
  await t.step("pads day with a space like syslog", () => {
    assertEquals(syslogTime(new Date(2026, 0, 15, 23, 59, 0)), "Jan 15 23:59:00");
  });

  await t.step("a forged record in client text stays inside one line", () => {
    const { log, lines } = capture();
    const forged = "x\r\nNov  3 07:05:09 mx postwarden/smtpd[42]: 4ABC: removed";
    log.info(`connect from unknown[192.0.2.1] helo=<${forged}>`);
    assertEquals(lines, [
      `${PREFIX}connect from unknown[192.0.2.1] helo=<x??Nov  3 07:05:09 mx ` +
      "postwarden/smtpd[42]: 4ABC: removed>\n",
    ]);
  });

  await t.step("control characters become ?, UTF-8 text is kept", () => {
    const { log, lines } = capture();
    log.info("nul\x00 tab\t del\x7f esc\x1b[31m nel\x85 ls\u2028 ps\u2029 bs\b");
    log.info("lone \ud800 and \udc00, pair \ud83d\udce7, j\u00f6rg@b\u00fccher.example");
    assertEquals(lines, [
      `${PREFIX}nul? tab? del? esc?[31m nel? ls? ps? bs?\n`,
      `${PREFIX}lone ? and ?, pair \ud83d\udce7, j\u00f6rg@b\u00fccher.example\n`,
    ]);
  });

  await t.step("masks the prefix fields too", () => {
    const lines: string[] = [];
    new Logger({
      program: "postwarden/smtpd",
      hostname: "mx\nfake",
      sinks: [(l) => lines.push(l)],
      now: () => new Date(2026, 10, 3, 7, 5, 9),
      pid: 42,
    }).error("e");
    assertEquals(lines, ["Nov  3 07:05:09 mx?fake postwarden/smtpd[42]: error: e\n"]);
  });

  await t.step("any message is exactly one record", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.fullUnicodeString(),
          fc.array(fc.constantFrom("\r", "\n", "\x00", "\u2028", "\x85", "a", "\ud800", "é"))
            .map((a) => a.join("")),
        ),
        (msg) => {
          const { log, lines } = capture();
          log.info(msg);
          assertEquals(lines.length, 1);
          const line = lines[0];
          assert(line.startsWith(PREFIX) && line.endsWith("\n"));
          const body = line.slice(0, -1);
          // deno-lint-ignore no-control-regex
          assert(!/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(body), JSON.stringify(line));
          assert(body.isWellFormed(), JSON.stringify(line));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
