/** The bench's stage figures from maillog lines, Postfix's and ours alike. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { formatStages, parseDelays, stageSummary } from "./stages.ts";

Deno.test("stages: delays= of sent lines, in ms, with p50 and p99", () => {
  const log = [
    "Dec  2 21:19:21 h postfix/smtp[1]: 4ABC: to=<b@example.net>, relay=127.0.0.1[127.0.0.1]:25, " +
    "delay=0.0023, delays=0.0012/0.00031/0.0002/0.0006, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
    "Dec  2 21:19:21 h postwarden/smtp[2]: 661A: to=<c@example.net>, relay=none, delay=1.3, " +
    "delays=1/0.2/0/0.1, dsn=4.4.1, status=deferred (connect refused)",
    "Dec  2 21:19:21 h postwarden/smtp[2]: 661B: to=<d@example.net>, orig_to=<x@y>, " +
    "relay=127.0.0.1[127.0.0.1]:25, delay=0.004, delays=0.002/0.001/0/0.001, dsn=2.0.0, " +
    "status=sent (250 2.0.0 Ok)",
    "Dec  2 21:19:21 h postwarden/qmgr[3]: 661B: removed",
  ].join("\n");
  const rows = parseDelays(log).map((r) => r.map((x) => Number(x.toFixed(3))));
  assertEquals(rows, [[2.3, 1.2, 0.31, 0.2, 0.6], [4, 2, 1, 0, 1]]);
  const s = stageSummary(parseDelays(log))!;
  assertEquals(s.n, 2);
  assertEquals(s.beforeQueue.p50, 2);
  assertEquals(Number(s.beforeQueue.p99.toFixed(3)), 2);
  assertEquals(stageSummary([]), null);
  assertEquals(formatStages(null), "stages: not measured");
});
