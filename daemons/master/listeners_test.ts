import { assertEquals } from "../../tests/helpers/assert.ts";
import { parseMasterCf } from "../../lib/config/mod.ts";
import { listenerProcesses } from "./listeners.ts";

Deno.test("listenerProcesses", async (t) => {
  const svc = (line: string) => parseMasterCf(line + "\n").services[0];
  await t.step('"-" gives one smtpd process', () => {
    assertEquals(listenerProcesses(svc("smtp inet n - n - - smtpd"), 16), 1);
    assertEquals(listenerProcesses(svc("smtp inet n - n - - smtpd"), 1), 1);
  });
  await t.step("a number is capped by the CPUs (at least two)", () => {
    assertEquals(listenerProcesses(svc("smtp inet n - n - 1 smtpd"), 8), 1);
    assertEquals(listenerProcesses(svc("smtp inet n - n - 4 smtpd"), 8), 4);
    assertEquals(listenerProcesses(svc("smtp inet n - n - 100 smtpd"), 8), 8);
    assertEquals(listenerProcesses(svc("smtp inet n - n - 100 smtpd"), 1), 2);
  });
  await t.step("0 (no limit) is one per CPU", () => {
    assertEquals(listenerProcesses(svc("smtp inet n - n - 0 smtpd"), 6), 6);
  });
  await t.step("unix services run once", () => {
    assertEquals(listenerProcesses(svc("cleanup unix n - n - 0 cleanup"), 8), 1);
  });
});
