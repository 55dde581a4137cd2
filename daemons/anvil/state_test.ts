import { assertEquals } from "../../tests/helpers/assert.ts";
import { answer } from "./server.ts";
import { AnvilState } from "./state.ts";

Deno.test("anvil state", async (t) => {
  const id = "smtp:192.0.2.1";
  await t.step("counts simultaneous connections and connection rate", () => {
    const s = new AnvilState(60);
    const a = {}, b = {};
    assertEquals(s.connect(a, id, 1000), { count: 1, rate: 1 });
    assertEquals(s.connect(b, id, 1001), { count: 2, rate: 2 });
    s.disconnect(a, id, 1002);
    assertEquals(s.connect(a, id, 1003), { count: 2, rate: 3 });
    // Another service or client is another ident.
    assertEquals(s.connect(a, "smtp:192.0.2.2", 1003), { count: 1, rate: 1 });
    assertEquals(s.connect(a, "submission:192.0.2.1", 1003), { count: 1, rate: 1 });
  });
  await t.step("a rate window lasts one time unit, then every rate starts again", () => {
    const s = new AnvilState(60);
    const o = {};
    s.connect(o, id, 1000);
    assertEquals(s.event("message", id, 1010), 1);
    assertEquals(s.event("message", id, 1060), 2); // start + unit is not yet past
    assertEquals(s.event("recipient", id, 1060), 1);
    assertEquals(s.event("message", id, 1061), 1); // new window
    assertEquals(s.lookup(id, 1061), { count: 1, rate: 0, mail: 1, rcpt: 0, ntls: 0, auth: 0 });
    assertEquals(s.connect(o, id, 1062), { count: 2, rate: 1 });
    assertEquals(s.event("auth", id, 1062), 1);
    assertEquals(s.event("newtls", id, 1062), 1);
    assertEquals(s.newtlsReport(id, 1063), 1);
    assertEquals(s.newtlsReport(id, 1200), 0);
  });
  await t.step("an idle ident is forgotten one time unit after its last disconnect", () => {
    const s = new AnvilState(60);
    const o = {};
    s.connect(o, id, 1000);
    s.event("message", id, 1001);
    s.disconnect(o, id, 1010);
    s.expire(1069);
    assertEquals(s.size, 1);
    assertEquals(s.lookup(id, 1069).count, 0);
    s.expire(1070);
    assertEquals(s.size, 0);
    assertEquals(s.connect(o, id, 1071), { count: 1, rate: 1 });
  });
  await t.step(
    "a client that goes away drops its connections; foreign disconnects do not count",
    () => {
      const s = new AnvilState(60);
      const smtpd1 = {}, smtpd2 = {};
      s.connect(smtpd1, id, 1000);
      s.connect(smtpd1, id, 1000);
      s.connect(smtpd2, id, 1000);
      s.disconnect(smtpd2, "smtp:192.0.2.9", 1000); // never connected
      s.disconnect({}, id, 1000); // not its connection
      assertEquals(s.lookup(id, 1000).count, 3);
      s.dropOwner(smtpd1, 1001);
      assertEquals(s.lookup(id, 1001).count, 1);
      s.dropOwner(smtpd2, 1002);
      assertEquals(s.lookup(id, 1002).count, 0);
    },
  );
  await t.step("statistics: peaks since the last report, as Postfix logs them", () => {
    const s = new AnvilState(60);
    const o = {};
    s.connect(o, id, 1000);
    s.connect(o, id, 1001);
    s.event("message", id, 1002);
    s.event("recipient", "smtp:192.0.2.2", 1003);
    const when = (t: number) => `T${t}`;
    assertEquals(s.report(when), [
      "statistics: max connection rate 2/60s for (smtp:192.0.2.1) at T1001",
      "statistics: max connection count 2 for (smtp:192.0.2.1) at T1001",
      "statistics: max message rate 1/60s for (smtp:192.0.2.1) at T1002",
      "statistics: max recipient rate 1/60s for (smtp:192.0.2.2) at T1003",
      "statistics: max cache size 2 at T1003",
    ]);
    assertEquals(s.report(when), []);
  });
  await t.step("requests: malformed ones are refused, not thrown", () => {
    const s = new AnvilState(60);
    assertEquals(answer(s, {}, { request: "connect", ident: id }, 1), {
      status: 0,
      count: 1,
      rate: 1,
    });
    assertEquals(answer(s, {}, { request: "message", ident: id }, 1), { status: 0, rate: 1 });
    assertEquals(answer(s, {}, { request: "connect" }, 1), { status: 1 });
    assertEquals(answer(s, {}, { request: "explode", ident: id }, 1), { status: 1 });
    assertEquals(answer(s, {}, { request: "connect", ident: "x".repeat(600) }, 1), { status: 1 });
    assertEquals(answer(s, {}, { request: "lookup", ident: { toString: 1 } }, 1), { status: 1 });
  });
});

Deno.test("anvil: requests and idents named like object members are plain data", () => {
  const s = new AnvilState(60);
  for (const request of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    assertEquals(answer(s, {}, { request, ident: "smtp:192.0.2.1" }, 1), { status: 1 });
  }
  // JSON as it comes over IPC: "__proto__" is an own key there, not the prototype.
  const smuggled = JSON.parse('{"__proto__": {"request": "connect", "ident": "smtp:x"}}');
  assertEquals(answer(s, {}, smuggled, 1), { status: 1 });
  // An ident is a key of its own: "__proto__" and "constructor" are counted apart.
  assertEquals(answer(s, {}, { request: "connect", ident: "__proto__" }, 1).count, 1);
  assertEquals(answer(s, {}, { request: "connect", ident: "__proto__" }, 1).count, 2);
  assertEquals(answer(s, {}, { request: "connect", ident: "constructor" }, 1).count, 1);
  assertEquals(answer(s, {}, { request: "lookup", ident: "toString" }, 1).count, 0);
});
