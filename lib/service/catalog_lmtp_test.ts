import { assertEquals } from "../../tests/helpers/assert.ts";
import { parseMasterCf } from "../config/mod.ts";
import { planServices } from "./catalog.ts";

const MASTER = parseMasterCf(
  "smtp inet n - y - - smtpd\nlocal unix - n n - - local\nlmtp unix - - n - - lmtp\n",
).services;

Deno.test("service plan: the lmtp agent runs, and mailbox_transport must name a service", () => {
  const plan = (v: Record<string, string>) => planServices(MASTER, (n) => v[n]);
  assertEquals(plan({}).run.map((s) => s.name), ["smtp", "local", "lmtp"]);
  assertEquals(plan({ mailbox_transport: "lmtp:unix:private/dovecot-lmtp" }).errors, []);
  assertEquals(plan({ mailbox_transport: "dovecot:unix:private/dovecot-lmtp" }).errors, [
    'mailbox_transport = dovecot:unix:private/dovecot-lmtp: master.cf has no unix service "dovecot" that Postwarden runs',
  ]);
});
