import { assertEquals } from "../../tests/helpers/assert.ts";
import { resolve, type ResolveParams } from "./mod.ts";

const p: ResolveParams = {
  myhostname: "mx.example.org",
  mydestination: ["mx.example.org", "localhost.example.org", "localhost"],
  localTransport: "local:mx.example.org",
  defaultTransport: "smtp",
  relayhost: "",
};

Deno.test("resolve", async (t) => {
  await t.step("mydestination goes to local", () => {
    assertEquals(resolve("alice@LOCALHOST", p), { transport: "local", nexthop: "mx.example.org" });
  });
  await t.step("remote goes to smtp by domain", () => {
    assertEquals(resolve("b@Example.NET", p), { transport: "smtp", nexthop: "example.net" });
  });
  await t.step("relayhost wins for remote", () => {
    assertEquals(resolve("b@example.net", { ...p, relayhost: "[127.0.0.1]:2526" }), {
      transport: "smtp",
      nexthop: "[127.0.0.1]:2526",
    });
  });
  await t.step("default_transport with nexthop", () => {
    assertEquals(resolve("b@example.net", { ...p, defaultTransport: "error:mail is disabled" }), {
      transport: "error",
      nexthop: "mail is disabled",
    });
  });
});
