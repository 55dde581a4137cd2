import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { DictError } from "./dict.ts";
import { netstring, parseSocketmapName, socketmapOpener } from "./map_socketmap.ts";
import { openDict, tableGrants } from "./registry.ts";

const OPTS = { fold: true, utf8: true, warn: () => {}, env: () => undefined, context: "" };
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Reads netstrings from a byte buffer; returns [payloads, rest]. */
function takeNetstrings(buf: Uint8Array): [string[], Uint8Array] {
  const out: string[] = [];
  for (;;) {
    const colon = buf.indexOf(0x3a);
    if (colon < 0) return [out, buf];
    const len = Number(dec.decode(buf.subarray(0, colon)));
    if (buf.length < colon + 1 + len + 1) return [out, buf];
    out.push(dec.decode(buf.subarray(colon + 1, colon + 1 + len)));
    buf = buf.slice(colon + 2 + len);
  }
}

/** A socketmap server: records requests, answers with `reply` (raw bytes, or null to hang up). */
function server(listener: Deno.Listener, reply: (req: string) => Uint8Array | null) {
  const requests: string[] = [];
  let connections = 0;
  const done = (async () => {
    for await (const conn of listener) {
      connections++;
      (async () => {
        let buf: Uint8Array = new Uint8Array(0);
        const chunk = new Uint8Array(65536);
        try {
          for (;;) {
            const n = await conn.read(chunk);
            if (n === null) break;
            const joined = new Uint8Array(buf.length + n);
            joined.set(buf);
            joined.set(chunk.subarray(0, n), buf.length);
            const [reqs, rest] = takeNetstrings(joined);
            buf = rest;
            for (const r of reqs) {
              requests.push(r);
              const answer = reply(r);
              if (answer === null) {
                conn.close();
                return;
              }
              await conn.write(answer);
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
  })().catch(() => {});
  return {
    requests,
    connections: () => connections,
    close: async () => {
      listener.close();
      await done;
    },
  };
}

function answer(req: string): Uint8Array | null {
  const key = req.slice(req.indexOf(" ") + 1);
  const data: Record<string, string> = {
    "a@example.com": "OK b@example.net",
    "sp ace": "OK with spaces, and, commas",
    "café": "OK été",
    "temp": "TEMP database down",
    "timeout": "TIMEOUT slow",
    "perm": "PERM broken",
    "weird": "MAYBE",
    "okbare": "OK",
  };
  if (key === "huge") return netstring(enc.encode("OK " + "x".repeat(100_001)));
  if (key === "garbled") return enc.encode("5:OK ab;");
  return netstring(enc.encode(data[key] ?? "NOTFOUND "));
}

Deno.test("socketmap: table", async (t) => {
  await t.step("names", () => {
    assertEquals(parseSocketmapName("inet:127.0.0.1:9999:virtual"), {
      endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 9999 },
      map: "virtual",
    });
    assertEquals(parseSocketmapName("unix:/run/sm.sock:aliases"), {
      endpoint: { transport: "unix", path: "/run/sm.sock" },
      map: "aliases",
    });
    assertEquals(parseSocketmapName("inet:[::1]:9999:m").endpoint, {
      transport: "tcp",
      hostname: "::1",
      port: 9999,
    });
  });

  await t.step("bad names are config errors", async () => {
    for (const bad of ["socketmap:novalue", "socketmap:inet:host:map", "socketmap:tcp:h:1:m"]) {
      const e = await assertRejects(() => openDict(bad), DictError);
      assertEquals(e.kind, "config", bad);
    }
  });

  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const s = server(l, answer);
  const name = `inet:127.0.0.1:${l.addr.port}:virtual`;
  const dict = await socketmapOpener({ timeoutMs: 2000 })(name, OPTS);
  try {
    await t.step("OK is the value, NOTFOUND is not found, one connection", async () => {
      assertEquals(await dict.lookup("a@example.com"), "b@example.net");
      assertEquals(await dict.lookup("nothing"), undefined);
      assertEquals(await dict.lookup("sp ace"), "with spaces, and, commas");
      assertEquals(await dict.lookup("café"), "été");
      assertEquals(await dict.lookup("A@Example.com"), undefined);
      assertEquals(s.requests.slice(0, 5), [
        "virtual a@example.com",
        "virtual nothing",
        "virtual sp ace",
        "virtual café",
        "virtual A@Example.com",
      ]);
      assertEquals(s.connections(), 1);
      assertEquals(dict.pattern, true);
    });
    await t.step("hostile keys are one netstring each", async () => {
      assertEquals(await dict.lookup("x,5:y\n3:abc,"), undefined);
      assertEquals(s.requests.at(-1), "virtual x,5:y\n3:abc,");
    });
    await t.step("TEMP, TIMEOUT and unknown replies are retry, PERM is config", async () => {
      for (
        const [k, kind] of [["temp", "retry"], ["timeout", "retry"], ["weird", "retry"], [
          "perm",
          "config",
        ]]
      ) {
        const e = await assertRejects(() => dict.lookup(k), DictError);
        assertEquals(e.kind, kind, k);
      }
    });
    await t.step("'OK' without a space is not found, as Postfix", async () => {
      assertEquals(await dict.lookup("okbare"), undefined);
    });
    await t.step("a reply over 100000 bytes or a broken netstring is retry", async () => {
      for (const k of ["huge", "garbled"]) {
        const e = await assertRejects(() => dict.lookup(k), DictError);
        assertEquals(e.kind, "retry", k);
      }
      assertEquals(await dict.lookup("a@example.com"), "b@example.net");
    });
  } finally {
    await dict.close();
    await s.close();
  }

  await t.step("a server that hung up is tried once more; a dead one is retry", async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/sm.sock`;
    let first = true;
    const s2 = server(Deno.listen({ transport: "unix", path }), (req) => {
      if (first && req.endsWith(" second")) {
        first = false;
        return null;
      }
      return answer(req);
    });
    const d = await openDict(`socketmap:unix:${path}:aliases`);
    assertEquals(await d.lookup("a@example.com"), "b@example.net");
    assertEquals(await d.lookup("second"), undefined);
    assertEquals(s2.connections(), 2);
    await d.close();
    await s2.close();
    const dead = await openDict(`socketmap:unix:${dir}/none.sock:aliases`);
    const e = await assertRejects(() => dead.lookup("a@example.com"), DictError);
    assertEquals(e.kind, "retry");
    await dead.close();
    const g = await tableGrants(`socketmap:unix:${path}:aliases`, {
      readTextFile: () => Promise.reject(new Error("no")),
    });
    assertEquals([g.read, g.write, g.net], [[path], [path], []]);
    await Deno.remove(dir, { recursive: true });
  });

  await t.step("Postfix's postmap sends the same request and gets the same answer", async () => {
    if (!havePeer("/usr/sbin/postmap")) return;
    await Deno.mkdir("/tmp/pfc-tcp", { recursive: true });
    await Deno.writeTextFile("/tmp/pfc-tcp/main.cf", "compatibility_level = 3.6\n");
    const l3 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const s3 = server(l3, answer);
    const spec = `socketmap:inet:127.0.0.1:${l3.addr.port}:virtual`;
    const d = await openDict(spec, { warn: () => {} });
    try {
      for (const key of ["a@example.com", "nothing", "sp ace", "café", "temp", "perm", "okbare"]) {
        const n = s3.requests.length;
        const pf = await new Deno.Command("/usr/sbin/postmap", {
          args: ["-c", "/tmp/pfc-tcp", "-q", key, spec],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const theirs = pf.code === 0
          ? dec.decode(pf.stdout).replace(/\n$/, "")
          : /fatal/.test(dec.decode(pf.stderr))
          ? "error"
          : "not found";
        const theirReq = s3.requests[n];
        let ours: string;
        try {
          ours = (await d.lookup(key)) ?? "not found";
        } catch {
          ours = "error";
        }
        assertEquals(ours, theirs, key);
        assertEquals(s3.requests.at(-1), theirReq, key);
      }
    } finally {
      await d.close();
      await s3.close();
    }
  });
});
