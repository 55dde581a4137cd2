/**
 * The Dovecot auth client against a scripted fake Dovecot on a UNIX
 * socket: the handshake and the lines we send (service, nologin, lip,
 * rip, secured, resp), OK/CONT/FAIL handling, replies dispatched by id to
 * concurrent exchanges, and a hostile or broken server (wrong socket
 * kind, wrong version, lost connection, endless line, no reply) giving
 * temporary failures, never a crash or a hang. The real Dovecot is in
 * tests/interop/sasl_test.ts.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { DovecotAuthClient } from "./dovecot.ts";
import type { SaslClientInfo } from "./mod.ts";

const HANDSHAKE = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n" +
  "MECH\tSECRET\tprivate\nSPID\t1\nCUID\t7\nCOOKIE\tabc\nDONE\n";

const INFO: SaslClientInfo = {
  clientAddr: "192.0.2.7",
  serverAddr: "192.0.2.1",
  secured: false,
  service: "smtp",
};

/** A fake Dovecot: `onLine` answers each line we send (after the handshake). */
async function fake(
  greeting: string,
  onLine: (line: string, write: (s: string) => Promise<void>, conn: Deno.Conn) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "dovecot-fake-" });
  const path = join(dir, "auth");
  const listener = Deno.listen({ transport: "unix", path });
  const seen: string[] = [];
  const conns: Deno.Conn[] = [];
  const loop = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const enc = new TextEncoder();
        const write = async (s: string) => {
          await conn.write(enc.encode(s));
        };
        await write(greeting);
        const buf = new Uint8Array(4096);
        let text = "";
        for (;;) {
          let n: number | null;
          try {
            n = await conn.read(buf);
          } catch {
            return;
          }
          if (n === null) return;
          text += new TextDecoder().decode(buf.subarray(0, n));
          let nl;
          while ((nl = text.indexOf("\n")) >= 0) {
            const line = text.slice(0, nl);
            text = text.slice(nl + 1);
            seen.push(line);
            if (!line.startsWith("VERSION") && !line.startsWith("CPID")) {
              await onLine(line, write, conn).catch(() => {});
            }
          }
        }
      })();
    }
  })();
  const warnings: string[] = [];
  const client = new DovecotAuthClient({
    connect: () => Deno.connect({ transport: "unix", path }),
    warn: (m) => warnings.push(m),
    pid: 4242,
    name: "private/auth",
    replyTimeoutMs: 1000,
  });
  return {
    client,
    seen,
    warnings,
    async close() {
      client.close();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await loop.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A Dovecot that knows alice/secret for PLAIN and LOGIN. */
const dovecotLike = async (line: string, write: (s: string) => Promise<void>) => {
  const f = line.split("\t");
  const id = f[1];
  if (f[0] === "AUTH") {
    const resp = f.find((x) => x.startsWith("resp="))?.slice(5);
    if (f[2] === "LOGIN") return await write(`CONT\t${id}\tVXNlcm5hbWU6\n`);
    if (resp === btoa("\0alice\0secret")) return await write(`OK\t${id}\tuser=alice\n`);
    return await write(`FAIL\t${id}\tuser=alice\n`);
  }
  if (f[0] === "CONT") {
    if (f[2] === btoa("alice")) return await write(`CONT\t${id}\tUGFzc3dvcmQ6\n`);
    if (f[2] === btoa("secret")) return await write(`OK\t${id}\tuser=alice\n`);
    return await write(`FAIL\t${id}\treason=Bad\tthings\n`);
  }
};

Deno.test("Dovecot auth client", async (t) => {
  await t.step("handshake, mechanisms (private ones hidden), the AUTH line", async () => {
    const f = await fake(HANDSHAKE, dovecotLike);
    try {
      assertEquals(await f.client.mechanisms(), [
        { name: "PLAIN", props: ["plaintext"] },
        { name: "LOGIN", props: ["plaintext"] },
      ]);
      const x = f.client.start("PLAIN", { ...INFO, secured: true });
      assertEquals(await x.first(btoa("\0alice\0secret")), { status: "ok", username: "alice" });
      assertEquals(f.seen.slice(0, 2), ["VERSION\t1\t1", "CPID\t4242"]);
      assertEquals(
        f.seen[2],
        `AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.1\trip=192.0.2.7\tsecured\tresp=${
          btoa("\0alice\0secret")
        }`,
      );
      const y = f.client.start("PLAIN", INFO);
      assertEquals(await y.first(btoa("\0alice\0nope")), {
        status: "fail",
        reason: "",
        username: "alice",
      });
      assert(!f.seen[3].includes("secured"));
    } finally {
      await f.close();
    }
  });

  await t.step("LOGIN over CONT; concurrent exchanges get their own replies", async () => {
    const f = await fake(HANDSHAKE, dovecotLike);
    try {
      const a = f.client.start("LOGIN", INFO);
      const b = f.client.start("LOGIN", INFO);
      assertEquals(await a.first(null), { status: "more", challenge: "VXNlcm5hbWU6" });
      assertEquals(await b.first(null), { status: "more", challenge: "VXNlcm5hbWU6" });
      const [ra, rb] = await Promise.all([a.next(btoa("alice")), b.next(btoa("mallory"))]);
      assertEquals(ra, { status: "more", challenge: "UGFzc3dvcmQ6" });
      assertEquals(rb, { status: "fail", reason: "Bad" });
      assertEquals(await a.next(btoa("secret")), { status: "ok", username: "alice" });
    } finally {
      await f.close();
    }
  });

  await t.step("the wrong socket, the wrong version: warned, no mechanisms", async () => {
    for (
      const [greeting, want] of [
        [
          "VERSION\t1\t2\nSPID\t1\nDONE\n",
          /^SASL: Connected to wrong auth socket \(auth-master instead of auth-client\)$/,
        ],
        ["VERSION\t2\t0\nMECH\tPLAIN\nDONE\n", /^SASL: Protocol version mismatch \(2 vs\. 1\)$/],
        ["", /^SASL: Connect to Dovecot auth socket 'private\/auth' failed: timeout$/],
      ] as const
    ) {
      const f = await fake(greeting, dovecotLike);
      try {
        let failed = false;
        await f.client.mechanisms().catch(() => (failed = true));
        assert(failed, greeting);
        assertMatch(f.warnings.join("\n"), want);
        const x = f.client.start("PLAIN", INFO);
        assertEquals((await x.first(null)).status, "temp");
      } finally {
        await f.close();
      }
    }
  });

  await t.step(
    "lost connection, no reply, endless line: temporary failures, reconnect",
    async () => {
      let mode = "drop";
      const f = await fake(HANDSHAKE, async (line, write, conn) => {
        if (mode === "drop") conn.close();
        else if (mode === "silent") return;
        else if (mode === "flood") await write("x".repeat(100_000));
        else await dovecotLike(line, write);
      });
      try {
        await f.client.mechanisms();
        const first = await f.client.start("PLAIN", INFO).first(btoa("\0alice\0secret"));
        assertEquals(first, { status: "temp", reason: "Connection lost to authentication server" });
        mode = "silent";
        const silent = await f.client.start("PLAIN", INFO).first(btoa("\0alice\0secret"));
        assertEquals(silent, { status: "temp", reason: "Authentication server timed out" });
        mode = "flood";
        const flood = await f.client.start("PLAIN", INFO).first(btoa("\0alice\0secret"));
        assertEquals(flood.status, "temp");
        mode = "ok";
        const ok = await f.client.start("PLAIN", INFO).first(btoa("\0alice\0secret"));
        assertEquals(ok, { status: "ok", username: "alice" });
      } finally {
        await f.close();
      }
    },
  );

  await t.step(
    "tabs and newlines never reach the protocol; control bytes in names are '?'",
    async () => {
      const f = await fake(HANDSHAKE, async (line, write) => {
        await write(`OK\t${line.split("\t")[1]}\tuser=ev\x01il\n`);
      });
      try {
        const x = f.client.start("PLAIN\tresp=x", { ...INFO, service: "smtp\nAUTH\t9" });
        assertEquals(await x.first("abc\tdef\nAUTH"), { status: "ok", username: "ev?il" });
        assertEquals(f.seen.filter((l) => l.startsWith("AUTH")).length, 1);
        assert(f.seen.every((l) => !l.includes("\r")));
      } finally {
        await f.close();
      }
    },
  );
});

Deno.test("Dovecot auth client: reply keys named like object members are plain data", async () => {
  // Mechanisms and their properties, and OK/FAIL fields, named __proto__, constructor, ...
  const greeting = "VERSION\t1\t1\nMECH\tPLAIN\tplaintext\t__proto__\tconstructor\n" +
    "MECH\t__proto__\ttoString\nMECH\tconstructor\nSPID\t1\nCUID\t1\nCOOKIE\tx\nDONE\n";
  const f = await fake(greeting, async (line, write) => {
    const id = line.split("\t")[1];
    await write(
      line.includes(`resp=${btoa("\0alice\0secret")}`)
        ? `OK\t${id}\t__proto__=x\tconstructor=y\tuser=alice\ttoString=z\n`
        : `FAIL\t${id}\thasOwnProperty=1\treason=no\t__proto__=user=mallory\n`,
    );
  });
  try {
    const mechs = await f.client.mechanisms();
    assertEquals(mechs.map((m) => m.name), ["PLAIN", "__proto__", "constructor"]);
    assertEquals(mechs[0].props, ["plaintext", "__proto__", "constructor"]);
    const ok = f.client.start("PLAIN", INFO);
    assertEquals(await ok.first(btoa("\0alice\0secret")), { status: "ok", username: "alice" });
    const no = f.client.start("PLAIN", INFO);
    assertEquals(await no.first(btoa("\0alice\0nope")), { status: "fail", reason: "no" });
    assertEquals(({} as Record<string, unknown>).x, undefined);
  } finally {
    await f.close();
  }
});
