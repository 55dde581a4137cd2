import { assertEquals } from "../../tests/helpers/assert.ts";
import { Logger, syslogTime } from "./mod.ts";

Deno.test("logger", async (t) => {
  await t.step("formats Postfix-style lines", () => {
    const lines: string[] = [];
    const log = new Logger({
      program: "postwarden/smtpd",
      hostname: "mx",
      sinks: [(l) => lines.push(l)],
      now: () => new Date(2026, 10, 3, 7, 5, 9),
      pid: 42,
    });
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
});
