import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { DictError } from "./dict.ts";
import { hexQuote, hexUnquote, tcpOpener } from "./map_tcp.ts";
import { openDict } from "./registry.ts";

const OPTS = { fold: true, utf8: true, warn: () => {}, env: () => undefined, context: "" };
const dec = new TextDecoder();

/**
 * A tcp_table server: records each request line and answers from `reply`
 * (a line without its newline, or null to hang up at once).
 */
function server(reply: (req: string) => string | null) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  let connections = 0;
  const serve = async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        let buf = "";
        const chunk = new Uint8Array(65536);
        try {
          for (;;) {
            const n = await conn.read(chunk);
            if (n === null) break;
            buf += dec.decode(chunk.subarray(0, n));
            let nl;
            while ((nl = buf.indexOf("\n")) >= 0) {
              const req = buf.slice(0, nl);
              buf = buf.slice(nl + 1);
              requests.push(req);
              const r = reply(req);
              if (r === null) {
                conn.close();
                return;
              }
              await conn.write(new TextEncoder().encode(r + "\n"));
            }
          }
        } catch {
          // client went away
        }
        try {
          conn.close();
        } catch {
          // closed
        }
      })();
    }
  };
  const done = serve().catch(() => {});
  return {
    name: `127.0.0.1:${listener.addr.port}`,
    requests,
    connections: () => connections,
    close: async () => {
      listener.close();
      await done;
    },
  };
}

/** The table the server serves: key (decoded) to reply. */
function table(req: string): string {
  const key = dec.decode(hexUnquote(new TextEncoder().encode(req.slice(4))));
  const data: Record<string, string> = {
    "a@example.com": "200 b@example.net",
    "sp ace": "200 value%20with%20spaces%25",
    "café": "200 %C3%A9t%C3%A9",
    "soft": "400 try later",
    "bad": "300 what",
    "garbled": "200 broken %G1",
    "nospace": "200",
    "long": "200 " + "x".repeat(5000),
  };
  return data[key] ?? "500 not found";
}

Deno.test("tcp: table", async (t) => {
  await t.step("hexQuote encodes %, white space, controls and non-ASCII bytes", () => {
    assertEquals(hexQuote("a b%c\t\n\x7f~é"), "a%20b%25c%09%0A%7F~%C3%A9");
    assertEquals(hexQuote("\0"), "%00");
    assertEquals(dec.decode(hexUnquote(new TextEncoder().encode("%c3%A9x"))!), "éx");
    assertEquals(hexUnquote(new TextEncoder().encode("%4")), undefined);
  });

  const s = server(table);
  const open = tcpOpener({ retryDelayMs: 1, maxTries: 3, timeoutMs: 2000 });
  const dict = await open(s.name, OPTS);
  try {
    await t.step("200 is the value, 500 is not found, on one connection", async () => {
      assertEquals(await dict.lookup("a@example.com"), "b@example.net");
      assertEquals(await dict.lookup("nothing"), undefined);
      assertEquals(await dict.lookup("sp ace"), "value with spaces%");
      assertEquals(await dict.lookup("café"), "été");
      assertEquals(s.connections(), 1);
      assertEquals(s.requests.slice(0, 4), [
        "get a@example.com",
        "get nothing",
        "get sp%20ace",
        "get caf%C3%A9",
      ]);
    });
    await t.step("keys are not folded (a pattern table)", async () => {
      assertEquals(dict.pattern, true);
      assertEquals(await dict.lookup("A@example.com"), undefined);
      assertEquals(s.requests.at(-1), "get A@example.com");
    });
    await t.step("hostile keys travel encoded and cannot add a request", async () => {
      await dict.lookup("x\nget a@example.com");
      assertEquals(s.requests.at(-1), "get x%0Aget%20a@example.com");
      assertEquals(await dict.lookup("a\0b"), undefined);
      assertEquals(s.requests.at(-1), "get a%00b");
    });
    await t.step("400 is retry, and the connection is closed", async () => {
      const before = s.connections();
      const e = await assertRejects(() => dict.lookup("soft"), DictError);
      assertEquals(e.kind, "retry");
      assertEquals(await dict.lookup("a@example.com"), "b@example.net");
      assertEquals(s.connections(), before + 1);
    });
    await t.step(
      "a bad status, bad %XX, a missing space or an over-long reply is retry",
      async () => {
        for (const k of ["bad", "garbled", "nospace", "long"]) {
          const e = await assertRejects(() => dict.lookup(k), DictError);
          assertEquals(e.kind, "retry", k);
        }
      },
    );
  } finally {
    await dict.close();
    await s.close();
  }

  await t.step("a server that is down is retry after the tries, never not found", async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const name = `127.0.0.1:${l.addr.port}`;
    l.close();
    const d = await open(name, OPTS);
    const e = await assertRejects(() => d.lookup("a"), DictError, "connect to TCP map");
    assertEquals(e.kind, "retry");
    await d.close();
  });

  await t.step("a hang-up is retried on a new connection", async () => {
    let first = true;
    const s2 = server((req) => {
      if (first) {
        first = false;
        return null;
      }
      return table(req);
    });
    const d = await open(s2.name, OPTS);
    assertEquals(await d.lookup("a@example.com"), "b@example.net");
    assertEquals(s2.connections(), 2);
    await d.close();
    await s2.close();
  });

  await t.step("bad names and grants", async () => {
    await assertRejects(() => openDict("tcp:localhost"), DictError, "tcp:host:port");
    const { tableGrants } = await import("./registry.ts");
    const ctx = { readTextFile: () => Promise.reject(new Error("no")) };
    assertEquals((await tableGrants("tcp:127.0.0.1:7777", ctx)).net, ["127.0.0.1:7777"]);
    assertEquals((await tableGrants("tcp:[::1]:7777", ctx)).net, ["[::1]:7777"]);
  });

  await t.step("Postfix's postmap sends the same requests and gets the same answers", async () => {
    if (!havePeer("/usr/sbin/postmap")) return;
    await Deno.mkdir("/tmp/pfc-tcp", { recursive: true });
    await Deno.writeTextFile("/tmp/pfc-tcp/main.cf", "compatibility_level = 3.6\n");
    const s3 = server(table);
    const d = await open(s3.name, OPTS);
    try {
      for (const key of ["a@example.com", "nothing", "sp ace", "café", "A@b%c", "soft", "bad"]) {
        const n = s3.requests.length;
        const pf = await new Deno.Command("/usr/sbin/postmap", {
          args: ["-c", "/tmp/pfc-tcp", "-q", key, `tcp:${s3.name}`],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const theirReqs = s3.requests.slice(n);
        const theirs = pf.code === 0
          ? dec.decode(pf.stdout).replace(/\n$/, "")
          : /fatal|error|warning/.test(dec.decode(pf.stderr))
          ? "error"
          : "not found";
        const m = s3.requests.length;
        let ours: string;
        try {
          ours = (await d.lookup(key)) ?? "not found";
        } catch {
          ours = "error";
        }
        assertEquals(ours, theirs, key);
        // Postfix retries a 400 on new connections; compare the first request.
        assertEquals(s3.requests[m], theirReqs[0], key);
      }
    } finally {
      await d.close();
      await s3.close();
    }
  });
});
