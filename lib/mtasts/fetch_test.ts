/**
 * Tests of the MTA-STS policy fetch against a real HTTPS server on
 * loopback (Deno.serve with a throwaway CA from tests/helpers/tls.ts; the
 * client trusts it with Deno.createHttpClient caCerts). The client reaches
 * "https://mta-sts.example.test/..." through a small HTTP CONNECT proxy of
 * the test, so the URL, the SNI and the certificate check are the real
 * ones. Needs openssl for the certificates: skips loudly without it (and
 * fails under CI=true).
 */
import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/helpers/assert.ts";
import { havePeer, run } from "../../tests/helpers/peers.ts";
import { makeTestCert } from "../../tests/helpers/tls.ts";
import { fetchStsPolicy, StsFetchError } from "./fetch.ts";
import { StsPolicyError } from "./policy.ts";

/** A certificate for "other.example.test" from makeTestCert's CA in `dir`. */
async function otherName(dir: string): Promise<{ cert: string; key: string }> {
  const openssl = async (...args: string[]) => {
    const r = await run("openssl", args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  await Deno.writeTextFile(`${dir}/other.cnf`, "subjectAltName = DNS:other.example.test\n");
  await openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=other.example.test",
    "-keyout",
    `${dir}/other.key`,
    "-out",
    `${dir}/other.csr`,
  );
  await openssl(
    "x509",
    "-req",
    "-in",
    `${dir}/other.csr`,
    "-CA",
    `${dir}/ca.pem`,
    "-CAkey",
    `${dir}/ca.key`,
    "-set_serial",
    "2",
    "-days",
    "2",
    "-extfile",
    `${dir}/other.cnf`,
    "-out",
    `${dir}/other.pem`,
  );
  return {
    cert: await Deno.readTextFile(`${dir}/other.pem`),
    key: await Deno.readTextFile(`${dir}/other.key`),
  };
}

const POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n";

/** An HTTP CONNECT proxy that sends every tunnel to `target().port` and notes what was asked. */
function connectProxy(target: () => number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const asked: string[] = [];
  const conns = new Set<Deno.Conn>();
  const tunnel = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    asked.push(head.split(" ")[1]);
    await conn.write(new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"));
    const up = await Deno.connect({ hostname: "127.0.0.1", port: target() });
    conns.add(up);
    await Promise.allSettled([
      conn.readable.pipeTo(up.writable),
      up.readable.pipeTo(conn.writable),
    ]);
  };
  const served = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      tunnel(conn).catch(() => {}).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    asked,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed by its tunnel
        }
      }
      await served;
    },
  };
}

Deno.test({
  name: "lib/mtasts fetchStsPolicy over HTTPS",
  ignore: !havePeer("/usr/bin/openssl"),
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    const good = await makeTestCert(`${dir}`, "mta-sts.example.test");
    const other = await otherName(dir);
    /** What the server does for the current step. */
    let respond: (req: Request) => Response | Promise<Response> = () => new Response(POLICY);
    const paths: string[] = [];
    let release = () => {};
    const released = new Promise<void>((r) => release = r);
    const handler = (req: Request) => {
      paths.push(new URL(req.url).pathname);
      return respond(req);
    };
    const quiet = { hostname: "127.0.0.1", port: 0, onListen() {} };
    const server = Deno.serve({ ...quiet, cert: good.cert, key: good.key }, handler);
    const wrong = Deno.serve({ ...quiet, cert: other.cert, key: other.key }, handler);
    let port = server.addr.port;
    const proxy = connectProxy(() => port);
    // A new client per step: no pooled connection carries over to the next server.
    const fetchWith = (timeoutMs = 5000) => {
      const client = Deno.createHttpClient({ caCerts: [good.ca], proxy: { url: proxy.url } });
      return fetchStsPolicy("Example.TEST.", { client, timeoutMs }).finally(() => client.close());
    };
    const text = (body: BodyInit, type = "text/plain", init: ResponseInit = {}) => () =>
      new Response(body, { ...init, headers: { "content-type": type, ...init.headers } });
    const refused = async (why: RegExp) => {
      const e = await assertRejects(() => fetchWith(), StsFetchError);
      assertMatch(e.message, why);
      assertMatch(e.message, /^https:\/\/mta-sts\.example\.test\/\.well-known\/mta-sts\.txt: /);
    };

    try {
      await t.step("a policy served as text/plain", async () => {
        respond = text(POLICY);
        assertEquals(await fetchWith(), {
          mode: "enforce",
          mx: ["mx.example.test"],
          maxAge: 86400,
        });
        assertEquals(proxy.asked.at(-1), "mta-sts.example.test:443");
        assertEquals(paths.at(-1), "/.well-known/mta-sts.txt");
        respond = text(POLICY, "Text/Plain; charset=utf-8");
        assertEquals((await fetchWith()).mode, "enforce");
      });

      await t.step("a redirect is refused, not followed", async () => {
        respond = () =>
          new Response(null, {
            status: 301,
            headers: { location: "https://mta-sts.example.test/elsewhere.txt" },
          });
        const before = paths.length;
        await refused(
          /redirect refused \(HTTP 301 to https:\/\/mta-sts.example.test\/elsewhere.txt\)/,
        );
        assertEquals(paths.slice(before), ["/.well-known/mta-sts.txt"]);
      });

      await t.step("anything but 200 is refused", async () => {
        respond = text("not here", "text/plain", { status: 404 });
        await refused(/HTTP 404/);
        respond = text(POLICY, "text/plain", { status: 203 });
        await refused(/HTTP 203/);
      });

      await t.step("another media type is refused", async () => {
        for (const type of ["text/html", "application/octet-stream", "text/plain-ish", ""]) {
          respond = text(POLICY, type);
          await refused(/media type/);
        }
      });

      await t.step("more than 64 KiB is refused, with or without Content-Length", async () => {
        const pad = (n: number) => `${POLICY}x: ${"y".repeat(n - POLICY.length - 4)}\n`;
        respond = text(pad(65536));
        assertEquals((await fetchWith()).maxAge, 86400); // exactly 64 KiB is fine
        respond = text(pad(65537));
        await refused(/larger than 65536/);
        respond = () => {
          const body = new ReadableStream<Uint8Array>({
            pull(c) {
              c.enqueue(new TextEncoder().encode(`x: ${"y".repeat(8000)}\n`));
            },
          });
          return new Response(body, { headers: { "content-type": "text/plain" } });
        };
        await refused(/larger than 65536/); // an endless body, chunked
      });

      await t.step("a body that is not UTF-8, and a policy that does not parse", async () => {
        respond = text(new Uint8Array([0x76, 0xff, 0xfe, 0x0a]));
        await refused(/not UTF-8/);
        respond = text("<html>Welcome to nginx!</html>");
        await assertRejects(() => fetchWith(), StsPolicyError);
      });

      await t.step("time-outs: no answer, and a body that stalls", async () => {
        respond = async () => {
          await released;
          return new Response(POLICY);
        };
        let start = Date.now();
        const e = await assertRejects(() => fetchWith(300), StsFetchError);
        assertMatch(e.message, /no answer within 300 ms/);
        assert(Date.now() - start < 3000);
        respond = () =>
          new Response(
            new ReadableStream<Uint8Array>({
              start(c) {
                c.enqueue(new TextEncoder().encode("version: STSv1\n"));
              },
            }),
            { headers: { "content-type": "text/plain" } },
          );
        start = Date.now();
        const stalled = await assertRejects(() => fetchWith(300), StsFetchError);
        assertMatch(stalled.message, /no answer within 300 ms/);
        assert(Date.now() - start < 3000);
      });

      await t.step("a certificate for another name is refused", async () => {
        respond = text(POLICY);
        port = wrong.addr.port;
        await refused(/certificate not valid for name "mta-sts.example.test"/);
        port = server.addr.port;
      });

      await t.step("without the test CA the certificate is not trusted", async () => {
        const client = Deno.createHttpClient({ proxy: { url: proxy.url } });
        try {
          const e = await assertRejects(
            () => fetchStsPolicy("example.test", { client }),
            StsFetchError,
          );
          assertMatch(e.message, /invalid peer certificate: UnknownIssuer/);
        } finally {
          client.close();
        }
      });

      await t.step("a domain that is no host name is refused before any request", async () => {
        const before = paths.length;
        for (const d of ["exa mple.test", "example.test/x", "", "evil.test#", "-x.test"]) {
          await assertRejects(
            () => fetchStsPolicy(d, { fetch: () => Promise.reject(new Error("asked")) }),
            StsFetchError,
            "not a domain name",
          );
        }
        assertEquals(paths.length, before);
      });
    } finally {
      release();
      await proxy.close();
      await server.shutdown();
      await wrong.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
