import { assertEquals } from "../../tests/helpers/assert.ts";
import { filterRoute } from "./filter.ts";

Deno.test("content filter routing: Postfix's next hop choice", () => {
  const p = { defaultNexthop: "", myhostname: "mx.example" };
  assertEquals(filterRoute("smtp:[127.0.0.1]:10024", "a@B.example", p), {
    transport: "smtp",
    nexthop: "[127.0.0.1]:10024",
  });
  assertEquals(filterRoute("scan:", "a@B.example", p), { transport: "scan", nexthop: "b.example" });
  assertEquals(filterRoute("scan", "a@b.example", p), { transport: "scan", nexthop: "b.example" });
  assertEquals(filterRoute("scan:", "postmaster", p), { transport: "scan", nexthop: "mx.example" });
  assertEquals(filterRoute("scan:", "a@b.example", { ...p, defaultNexthop: "[::1]:10025" }), {
    transport: "scan",
    nexthop: "[::1]:10025",
  });
});
