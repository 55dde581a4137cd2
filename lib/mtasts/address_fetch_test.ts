/**
 * Tests of addressFetch against real HTTPS servers on loopback, with a
 * throwaway CA from tests/helpers/tls.ts: Deno.serve for well-formed
 * responses, and a raw Deno.listenTls server that writes whatever a step
 * scripts (hostile heads, broken framing, silence). The URLs name
 * "mta-sts.example.test"; `resolve` answers 127.0.0.1 and `connect` sends
 * port 443 to the test server, so SNI and the certificate check are the
 * real ones. The last test runs addressFetch in a child deno whose
 * --allow-net names the address only. Needs openssl for the
 * certificates: skips loudly without it (and fails under CI=true).
 */
import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/helpers/assert.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { makeTestCert, type TestCert } from "../../tests/helpers/tls.ts";
import { addressFetch, type AddressFetchOptions } from "./address_fetch.ts";
import { fetchStsPolicy, StsFetchError } from "./fetch.ts";

const POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n";
const POLICY_URL = "https://mta-sts.example.test/.well-known/mta-sts.txt";
const ENFORCE = { mode: "enforce", mx: ["mx.example.test"], maxAge: 86400 };
const noOpenssl = !havePeer("/usr/bin/openssl");
// Off by default in Deno 2.9; every test here must leave no connection, read or timer behind.
const sanitize = { sanitizeOps: true, sanitizeResources: true };

/** Options that reach the test server on `port` for any name, trusting the test CA. */
function via(port: number, cert: TestCert, more: Partial<AddressFetchOptions> = {}) {
  return {
    resolve: () => Promise.resolve(["127.0.0.1"]),
    caCerts: [cert.ca],
    connect: (o: { hostname: string; port: number }) =>
      Deno.connect({ hostname: o.hostname, port: o.port === 443 ? port : o.port }),
    ...more,
  };
}

/** The "what went wrong" of a fetch-style TypeError. */
function why(e: Error): string {
  assert(e instanceof TypeError, `not a TypeError: ${e}`);
  assert(e.cause instanceof Error, `no cause: ${e}`);
  return e.cause.message;
}

/** A port nothing listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * A TLS server that reads each request's head and answers with `reply`
 * (written as it is, octet for octet), then closes; or, when `reply` is a
 * function, lets it do what it will with the connection.
 */
function rawServer(cert: TestCert) {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: cert.cert,
    key: cert.key,
  });
  const requests: string[] = [];
  const handlers = new Set<Promise<void>>();
  const state = {
    reply: "" as string | Uint8Array | ((conn: Deno.TlsConn) => Promise<void>),
  };
  const handle = async (conn: Deno.TlsConn) => {
    try {
      const buf = new Uint8Array(4096);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      requests.push(head);
      const reply = state.reply;
      if (typeof reply === "function") await reply(conn);
      else await conn.write(typeof reply === "string" ? latin1(reply) : reply);
    } catch {
      // the client went away first (it refused what it was sent)
    } finally {
      try {
        conn.close();
      } catch {
        // closed by the reply
      }
    }
  };
  const conns = new Set<Deno.TlsConn>();
  const served = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const h = handle(conn);
      handlers.add(h);
      h.finally(() => {
        handlers.delete(h);
        conns.delete(conn);
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    state,
    /** Stops, closing what the client left open (so that a failing test does not hang here). */
    async close() {
      listener.close();
      await served;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed by its handler
        }
      }
      await Promise.all(handlers);
    },
  };
}

/** A string's char codes as octets (the test's replies may hold any octet). */
function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

Deno.test({
  name: "lib/mtasts addressFetch over HTTPS",
  ignore: noOpenssl,
  ...sanitize,
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    const cert = await makeTestCert(dir, "mta-sts.example.test");
    let respond: (req: Request) => Response | Promise<Response> = () => new Response(POLICY);
    /** The path and headers of each request Deno.serve saw. */
    const seen: { path: string; headers: Record<string, string> }[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: cert.cert, key: cert.key, onListen() {} },
      (req) => {
        seen.push({ path: new URL(req.url).pathname, headers: Object.fromEntries(req.headers) });
        return respond(req);
      },
    );
    const raw = rawServer(cert);
    const text = (body: BodyInit, init: ResponseInit = {}) => () =>
      new Response(body, { ...init, headers: { "content-type": "text/plain", ...init.headers } });
    const chunked = (body: string) => () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            for (let at = 0; at < body.length; at += 20) {
              c.enqueue(new TextEncoder().encode(body.slice(at, at + 20)));
            }
            c.close();
          },
        }),
        { headers: { "content-type": "text/plain" } },
      );
    const served = (more: Partial<AddressFetchOptions> = {}) =>
      addressFetch(via(server.addr.port, cert, more));
    const scripted = (more: Partial<AddressFetchOptions> = {}) =>
      addressFetch(via(raw.port, cert, more));
    const policy = (f: ReturnType<typeof addressFetch>, domain = "Example.TEST.") =>
      fetchStsPolicy(domain, { fetch: f as typeof fetch, timeoutMs: 5000 });

    try {
      await t.step("a policy through fetchStsPolicy, with Content-Length", async () => {
        respond = text(POLICY);
        assertEquals(await policy(served()), ENFORCE);
        const req = seen.at(-1)!;
        assertEquals(req.path, "/.well-known/mta-sts.txt");
        assertEquals(req.headers.host, "mta-sts.example.test");
        assertEquals(req.headers["user-agent"], "Postwarden-MTA-STS");
        assertEquals(req.headers.accept, "text/plain");
        const res = await served()(POLICY_URL);
        assertEquals(res.headers.get("content-length"), String(POLICY.length));
        assertEquals(await res.text(), POLICY);
      });

      await t.step("a policy through fetchStsPolicy, chunked", async () => {
        respond = chunked(POLICY);
        assertEquals(await policy(served()), ENFORCE);
        const res = await served()(POLICY_URL);
        assertEquals(res.headers.get("transfer-encoding"), "chunked");
        assertEquals(await res.text(), POLICY);
      });

      await t.step("the request as sent: Host has the port only when not 443", async () => {
        raw.state.reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        const res = await scripted()(`${POLICY_URL}?x=1#part`);
        assertEquals(await res.text(), "ok");
        assertEquals(
          raw.requests.at(-1),
          "GET /.well-known/mta-sts.txt?x=1 HTTP/1.1\r\nHost: mta-sts.example.test\r\n" +
            "User-Agent: Postwarden-MTA-STS\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        );
        const other = await scripted()(`https://mta-sts.example.test:${raw.port}/x`);
        await other.body?.cancel();
        assertMatch(
          raw.requests.at(-1)!,
          /^GET \/x HTTP\/1.1\r\nHost: mta-sts.example.test:\d+\r\n/,
        );
      });

      await t.step(
        "a 301 is returned as it is, not followed; fetchStsPolicy refuses it",
        async () => {
          const location = "https://mta-sts.example.test/elsewhere.txt";
          respond = () => new Response(null, { status: 301, headers: { location } });
          const before = seen.length;
          const res = await served()(POLICY_URL, { redirect: "manual" });
          assertEquals(res.status, 301);
          assertEquals(res.headers.get("location"), location);
          await res.body?.cancel();
          const e = await assertRejects(() => policy(served()), StsFetchError);
          assertMatch(
            e.message,
            /redirect refused \(HTTP 301 to https:\/\/mta-sts.example.test\/else/,
          );
          assertEquals(seen.slice(before).map((r) => r.path), [
            "/.well-known/mta-sts.txt",
            "/.well-known/mta-sts.txt",
          ]);
        },
      );

      await t.step("a certificate for another name is refused", async () => {
        respond = text(POLICY);
        const e = await assertRejects(
          () => served()("https://mta-sts.other.test/.well-known/mta-sts.txt"),
          TypeError,
          "fetch failed",
        );
        assertMatch(
          why(e),
          /^mta-sts.other.test: TLS at 127.0.0.1 port 443: .*certificate not valid for name "mta-sts.other.test"/,
        );
        const p = await assertRejects(() => policy(served(), "other.test"), StsFetchError);
        assertMatch(p.message, /fetch failed: .*not valid for name "mta-sts.other.test"/);
      });

      await t.step("a certificate from an unknown CA is refused", async () => {
        const e = await assertRejects(
          () => served({ caCerts: undefined })(POLICY_URL),
          TypeError,
          "fetch failed",
        );
        assertMatch(why(e), /invalid peer certificate: UnknownIssuer/);
        const p = await assertRejects(() => policy(served({ caCerts: [] })), StsFetchError);
        assertMatch(p.message, /UnknownIssuer/);
        // Deno reports a malformed PEM certificate as the peer's ("BadEncoding").
        const pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        const bad = await assertRejects(() => served({ caCerts: [pem] })(POLICY_URL), TypeError);
        assertMatch(why(bad), /TLS at 127.0.0.1 port 443: .*BadEncoding/);
      });

      await t.step("more than maxBody octets errors the body, however framed", async () => {
        const limited = (more: Partial<AddressFetchOptions> = {}) =>
          addressFetch(via(server.addr.port, cert, { maxBody: 100, ...more }));
        const tooLarge = async (res: Response) => {
          const e = await assertRejects(() => res.text(), TypeError, "body read failed");
          assertEquals(why(e), "mta-sts.example.test: body larger than 100 octets");
        };
        respond = text("x".repeat(100));
        assertEquals((await (await limited()(POLICY_URL)).text()).length, 100);
        respond = text("x".repeat(101));
        await tooLarge(await limited()(POLICY_URL));
        respond = chunked("x".repeat(100));
        assertEquals((await (await limited()(POLICY_URL)).text()).length, 100);
        respond = chunked("x".repeat(101));
        await tooLarge(await limited()(POLICY_URL));
        const untilClose = addressFetch(via(raw.port, cert, { maxBody: 100 }));
        raw.state.reply = `HTTP/1.1 200 OK\r\n\r\n${"x".repeat(100)}`;
        assertEquals((await (await untilClose(POLICY_URL)).text()).length, 100);
        raw.state.reply = `HTTP/1.1 200 OK\r\n\r\n${"x".repeat(101)}`;
        await tooLarge(await untilClose(POLICY_URL));
        raw.state.reply = `HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nxx`;
        await tooLarge(await untilClose(POLICY_URL));
        raw.state.reply =
          `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n`;
        await tooLarge(await untilClose(POLICY_URL));
      });

      await t.step("a hostile or broken response head is refused", async () => {
        const ok = "HTTP/1.1 200 OK\r\n";
        const cases: [string, RegExp][] = [
          ["SSH-2.0-OpenSSH_9.6\r\n", /not an HTTP\/1.x status line: "SSH-2.0/],
          ["HTTP/2 200\r\n\r\n", /not an HTTP\/1.x status line/],
          ["HTTP/1.1 20 OK\r\n\r\n", /not an HTTP\/1.x status line/],
          ["HTTP/1.1  200 OK\r\n\r\n", /not an HTTP\/1.x status line/],
          ["\r\n", /not an HTTP\/1.x status line: ""/],
          ["HTTP/1.1 600 Beyond\r\n\r\n", /status 600 is not a final HTTP status/],
          ["HTTP/1.1 101 Switching Protocols\r\n\r\n", /status 101 is not a final/],
          [ok + `X-Pad: ${"a".repeat(1000)}\r\n`.repeat(40), /header section larger than 32768/],
          [ok + `X-Pad: ${"a".repeat(40000)}`, /header section larger than 32768/],
          [ok + "X-A: 1\r\n".repeat(101) + "\r\n", /more than 100 header lines/],
          [ok + "X-A: 1\r\n continued\r\n\r\n", /folded header line/],
          [ok + "X-A: a\x01b\r\n\r\n", /control character 0x01/],
          [ok + "X-A: a\x7fb\r\n\r\n", /control character 0x7f/],
          [ok + "X-A: a\rb\r\n\r\n", /control character 0x0d/],
          ["HTTP/1.1 200 OK\nContent-Length: 0\n\n", /control character 0x0a/],
          [ok + "Bad Name: x\r\n\r\n", /malformed header line: "Bad Name: x"/],
          [ok + "X-A : y\r\n\r\n", /malformed header line/],
          [ok + "NoColon\r\n\r\n", /malformed header line/],
          [ok + ": empty name\r\n\r\n", /malformed header line/],
          [
            ok + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            /both Transfer-Encoding and Content-Length/,
          ],
          [ok + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nok", /conflicting Content-Length/],
          [ok + "Content-Length: 2, 3\r\n\r\nok", /conflicting Content-Length/],
          [ok + "Content-Length: -1\r\n\r\n", /invalid Content-Length "-1"/],
          [ok + "Content-Length: 1e3\r\n\r\n", /invalid Content-Length/],
          [ok + "Content-Length:\r\n\r\n", /invalid Content-Length ""/],
          [ok + "Transfer-Encoding: gzip, chunked\r\n\r\n", /unsupported Transfer-Encoding/],
          ["HTTP/1.1 100 Continue\r\n\r\n".repeat(6) + ok + "\r\n", /more than 5 interim/],
          [ok + "Content-", /connection closed inside a line/],
          ["", /connection closed inside a line/],
        ];
        for (const [reply, expected] of cases) {
          raw.state.reply = reply;
          const e = await assertRejects(() => scripted()(POLICY_URL), TypeError, "fetch failed");
          assertMatch(why(e), /^mta-sts.example.test: /, JSON.stringify(reply.slice(0, 80)));
          assertMatch(why(e), expected, JSON.stringify(reply.slice(0, 80)));
        }
        raw.state.reply = "HTTP/2 200\r\n\r\n";
        const e = await assertRejects(() => policy(scripted()), StsFetchError);
        assertMatch(
          e.message,
          /^https:\/\/mta-sts.example.test\/.well-known\/mta-sts.txt: fetch failed: mta-sts.example.test: not an HTTP\/1.x status line/,
        );
      });

      await t.step("1xx responses are skipped; what a final response holds is kept", async () => {
        raw.state.reply = "HTTP/1.1 100 Continue\r\n\r\n" +
          "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n" +
          "HTTP/1.1 200 Fine, thanks\r\nContent-Type: text/plain\r\nX-Two: a\r\n" +
          "x-two:\tb \r\nX-Empty:\r\nContent-Length: 2, 2\r\n\r\nokIGNORED";
        const res = await scripted()(POLICY_URL);
        assertEquals([res.status, res.statusText], [200, "Fine, thanks"]);
        assertEquals(res.headers.get("x-two"), "a, b");
        assertEquals(res.headers.get("x-empty"), "");
        assertEquals(res.headers.get("link"), null);
        assertEquals(await res.text(), "ok");
        raw.state.reply = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello";
        const empty = await scripted()(POLICY_URL);
        assertEquals([empty.status, empty.body], [204, null]);
        raw.state.reply = "HTTP/1.0 404\r\nContent-Type: text/plain\r\n\r\nnot here, \xff";
        const gone = await scripted()(POLICY_URL);
        assertEquals([gone.status, gone.statusText], [404, ""]);
        assertEquals(new Uint8Array(await gone.arrayBuffer()).at(-1), 0xff);
      });

      await t.step("a broken body errors the stream", async () => {
        const te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        const cases: [string, RegExp][] = [
          ["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", /closed after 5 of 10 octets/],
          [te + "zz\r\n", /malformed chunk-size line "zz"/],
          [te + "-1\r\n", /malformed chunk-size line/],
          [te + " 2\r\nok\r\n0\r\n\r\n", /malformed chunk-size line/],
          [te + "2\r\nabc\r\n0\r\n\r\n", /chunk data longer than its size/],
          [te + "2\r\nab", /connection closed inside a line/],
          [te + "5\r\nab", /connection closed inside a chunk/],
          [te + "2\r\nab\r\n", /connection closed inside a line/],
          [te + `2;${"x".repeat(2000)}\r\nok\r\n0\r\n\r\n`, /chunk-size line longer than 1024/],
          [te + "2\nab\r\n0\r\n\r\n", /control character 0x0a/],
          [te + "0\r\nX-T: 1\r\n", /connection closed inside a line/],
          [te + "0\r\n" + `X-T: ${"a".repeat(1000)}\r\n`.repeat(40), /trailer section larger/],
        ];
        for (const [reply, expected] of cases) {
          raw.state.reply = reply;
          const res = await scripted()(POLICY_URL);
          const e = await assertRejects(() => res.text(), TypeError, "body read failed");
          assertMatch(why(e), expected, JSON.stringify(reply.slice(0, 80)));
        }
        raw.state.reply = te + "2;a=b ; c\r\nok\r\n003\r\n!!!\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\nrest";
        assertEquals(await (await scripted()(POLICY_URL)).text(), "ok!!!");
      });

      await t.step("the first address refuses, the second answers", async () => {
        respond = text(POLICY);
        const closed = closedPort();
        const tried: string[] = [];
        const f = (addresses: string[]) =>
          addressFetch({
            resolve: () => Promise.resolve(addresses),
            caCerts: [cert.ca],
            connect: (o) => {
              tried.push(o.hostname);
              const port = o.hostname === "127.0.0.1" ? server.addr.port : closed;
              return Deno.connect({ hostname: o.hostname, port });
            },
          });
        assertEquals(await policy(f(["127.0.0.3", "127.0.0.1"])), ENFORCE);
        assertEquals(tried, ["127.0.0.3", "127.0.0.1"]);
        const e = await assertRejects(() => f(["127.0.0.3", "127.0.0.4"])(POLICY_URL), TypeError);
        assertMatch(
          why(e),
          /^mta-sts.example.test: cannot connect to port 443 at 127.0.0.3, 127.0.0.4: .*refused/i,
        );
        assert(e.cause instanceof Error && e.cause.cause instanceof Deno.errors.ConnectionRefused);
      });

      await t.step("a name that does not resolve", async () => {
        let connects = 0;
        const f = (resolve: () => Promise<string[]>) =>
          addressFetch({
            resolve,
            connect: () => {
              connects++;
              return Promise.reject(new Error("not to be called"));
            },
          });
        const e = await assertRejects(
          () => f(() => Promise.reject(new Error("NXDOMAIN")))(POLICY_URL),
          TypeError,
          "fetch failed",
        );
        assertEquals(why(e), "mta-sts.example.test: does not resolve: NXDOMAIN");
        const none = await assertRejects(() => f(() => Promise.resolve([]))(POLICY_URL), TypeError);
        assertEquals(why(none), "mta-sts.example.test: does not resolve: no address");
        const p = await assertRejects(() => policy(f(() => Promise.resolve([]))), StsFetchError);
        assertMatch(p.message, /fetch failed: mta-sts.example.test: does not resolve/);
        assertEquals(connects, 0);
      });

      await t.step("an IP address as host is connected to as it is", async () => {
        const asked: string[] = [];
        const f = addressFetch(via(server.addr.port, cert, {
          resolve: (name) => {
            asked.push(name);
            return Promise.resolve(["127.0.0.1"]);
          },
        }));
        const e = await assertRejects(
          () => f(`https://127.0.0.1:${server.addr.port}/`),
          TypeError,
        );
        assertMatch(why(e), /^127.0.0.1: TLS at 127.0.0.1 port \d+: .*not valid for name/);
        assertEquals(asked, []);
      });

      await t.step("only GET or POST of https: URLs; a GET has no body or headers", async () => {
        const f = served();
        const before = seen.length;
        await assertRejects(() => f("http://mta-sts.example.test/"), TypeError, "only https:");
        await assertRejects(() => f(POLICY_URL, { method: "PUT" }), TypeError, "only GET or POST");
        await assertRejects(() => f(POLICY_URL, { body: "x" }), TypeError, "no body");
        const bytes = new Uint8Array([1, 2, 3]);
        await assertRejects(
          () => f(POLICY_URL, { method: "GET", body: bytes }),
          TypeError,
          "no body",
        );
        await assertRejects(
          () => f(POLICY_URL, { method: "get", body: bytes }),
          TypeError,
          "no body",
        );
        await assertRejects(() => f(POLICY_URL, { headers: { a: "b" } }), TypeError, "headers");
        await assertRejects(
          () => f(POLICY_URL, { headers: { "content-type": "text/plain" } }),
          TypeError,
          "no request headers",
        );
        await assertRejects(() => f(POLICY_URL, { headers: {} }), TypeError, "headers");
        assertEquals(seen.length, before);
        await assertRejects(() => f("https://u:p@mta-sts.example.test/"), TypeError, "credentials");
        await assertRejects(() => f("not a url"), TypeError);
        const res = await f(POLICY_URL, { method: "get", redirect: "manual" });
        assertEquals(await res.text(), POLICY);
      });

      await t.step(
        "a POST sends its Content-Type, Content-Length and body as they are",
        async () => {
          const json = JSON.stringify({ "organization-name": "Postwarden", policies: [] });
          const report = await new Response(
            new Blob([json]).stream().pipeThrough(new CompressionStream("gzip")),
          ).bytes();
          const binary = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 256);
          let got: { method: string; headers: Record<string, string>; body: Uint8Array }[] = [];
          let status = 200;
          respond = async (req) => {
            got.push({
              method: req.method,
              headers: Object.fromEntries(req.headers),
              body: await req.bytes(),
            });
            return new Response(status === 204 ? null : "thanks", { status });
          };
          const url = "https://mta-sts.example.test/tlsrpt?x=1";
          const tlsrpt = { "Content-Type": "application/tlsrpt+gzip" };
          for (
            const [init, type, code] of [
              [{ method: "POST", body: report, headers: tlsrpt }, "application/tlsrpt+gzip", 200],
              [
                { method: "post", body: binary, headers: { "CONTENT-TYPE": 'a/b; q="1 2"' } },
                'a/b; q="1 2"',
                201,
              ],
              [{ method: "POST", body: new Uint8Array(0) }, "application/octet-stream", 204],
              [{ method: "POST", body: report, headers: {} }, "application/octet-stream", 202],
            ] as const
          ) {
            got = [];
            status = code;
            const res = await served()(url, init);
            assertEquals(res.status, code);
            assertEquals(await res.text(), code === 204 ? "" : "thanks");
            assertEquals(got.length, 1);
            assertEquals(got[0].method, "POST");
            assertEquals(got[0].headers["content-type"], type);
            assertEquals(got[0].headers["content-length"], String(init.body.length));
            assertEquals(got[0].headers["transfer-encoding"], undefined);
            assertEquals(got[0].headers.expect, undefined);
            assertEquals(got[0].body, init.body);
            assertEquals(seen.at(-1)!.path, "/tlsrpt");
          }
          // The request as written: the head (the body follows it, checked above).
          raw.state.reply = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\r\n";
          const created = await scripted()(url, { method: "POST", body: report, headers: tlsrpt });
          assertEquals([created.status, await created.text()], [201, ""]);
          const head = raw.requests.at(-1)!;
          assertEquals(
            head.slice(0, head.indexOf("\r\n\r\n") + 4),
            "POST /tlsrpt?x=1 HTTP/1.1\r\nHost: mta-sts.example.test\r\n" +
              "User-Agent: Postwarden-MTA-STS\r\nContent-Type: application/tlsrpt+gzip\r\n" +
              `Content-Length: ${report.length}\r\nConnection: close\r\n\r\n`,
          );
        },
      );

      await t.step("a POST needs a Uint8Array body and at most a Content-Type", async () => {
        let connects = 0;
        const f = addressFetch(via(server.addr.port, cert, {
          connect: () => {
            connects++;
            return Promise.reject(new Error("not to be called"));
          },
        }));
        const body = new Uint8Array([1, 2, 3]);
        const post = (init: RequestInit) => f(POLICY_URL, { method: "POST", ...init });
        const refused: [RequestInit, string][] = [
          [{}, "a POST body must be a Uint8Array"],
          [{ body: "report" }, "a POST body must be a Uint8Array"],
          [{ body: body.buffer }, "a POST body must be a Uint8Array"],
          [{ body: new Blob([body]) }, "a POST body must be a Uint8Array"],
          [{ body: new DataView(body.buffer) }, "a POST body must be a Uint8Array"],
          [{ body, headers: { accept: "text/plain" } }, `not "accept"`],
          [{ body, headers: { "content-type": "a/b", "x-a": "1" } }, `not "x-a"`],
          [{ body, headers: { "Content-Type": "a/b", "content-type": "a/b" } }, "given twice"],
          [{ body, headers: new Headers({ "content-type": "a/b" }) }, "a plain object"],
          [{ body, headers: [["content-type", "a/b"]] }, "a plain object"],
          [{ body, headers: { "content-type": "a/b\r\nX-Injected: 1" } }, "not a media type"],
          [{ body, headers: { "content-type": "a/b\n" } }, "not a media type"],
          [{ body, headers: { "content-type": "a/b\r" } }, "not a media type"],
          [{ body, headers: { "content-type": "a/b; q=\x01" } }, "not a media type"],
          [{ body, headers: { "content-type": "a/b;\tq=1" } }, "not a media type"],
          [{ body, headers: { "content-type": "a/b; q=\u00e9" } }, "not a media type"],
          [{ body, headers: { "content-type": "gzip" } }, "not a media type"],
          [{ body, headers: { "content-type": "" } }, "not a media type"],
          [{ body, headers: { "content-type": "a b/c" } }, "not a media type"],
        ];
        for (const [init, expected] of refused) {
          const e = await assertRejects(() => post(init), TypeError, expected);
          assertMatch(e.message, /^addressFetch: /);
        }
        const untyped = { body, headers: { "content-type": 1 } } as unknown as RequestInit;
        await assertRejects(() => post(untyped), TypeError, "not a media type: number");
        assertEquals(connects, 0);
      });

      await t.step("an aborted signal rejects with its reason before connecting", async () => {
        let connects = 0;
        const f = addressFetch(via(server.addr.port, cert, {
          connect: () => {
            connects++;
            return Promise.reject(new Error("not to be called"));
          },
        }));
        const reason = new Error("stop");
        const e = await assertRejects(() => f(POLICY_URL, { signal: AbortSignal.abort(reason) }));
        assertEquals(e, reason);
        assertEquals(connects, 0);
      });
    } finally {
      await server.shutdown();
      await raw.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "lib/mtasts addressFetch: time-outs, cancels and ends close the connection",
  ignore: noOpenssl,
  ...sanitize,
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    const cert = await makeTestCert(dir, "mta-sts.example.test");
    const raw = rawServer(cert);
    /** Settles when the client has closed the connection the server stalls on. */
    let clientClosed = Promise.resolve();
    /** The server writes `text`, then says nothing more until the client closes. */
    const stall = (text: string) => {
      let seen = () => {};
      clientClosed = new Promise((r) => seen = r);
      raw.state.reply = async (conn) => {
        if (text) await conn.write(new TextEncoder().encode(text));
        await conn.read(new Uint8Array(1)).catch(() => null);
        seen();
      };
    };
    /** Whether `p` settles within `ms`. */
    const settlesWithin = async (p: Promise<unknown>, ms: number) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms));
      try {
        return await Promise.race([p.then(() => true, () => true), late]);
      } finally {
        clearTimeout(timer);
      }
    };
    /** `p` settles within 3 s. */
    const soon = async (p: Promise<unknown>, what: string) =>
      assert(await settlesWithin(p, 3000), `${what}: not within 3 s`);
    /** The error `p()` rejects with, within 3 s. */
    const quick = async (p: () => Promise<unknown>): Promise<Error> => {
      const outcome = p().then(() => new Error("expected a rejection"), (e: Error) => e);
      await soon(outcome, "a rejection");
      return outcome;
    };
    const timedOut = (e: Error) =>
      assertEquals([e.name, e instanceof DOMException], ["TimeoutError", true]);

    try {
      await t.step("no TLS handshake: rejects in time, but Deno keeps the socket", async () => {
        const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const f = addressFetch(via((mute.addr as Deno.NetAddr).port, cert));
        const fetching = quick(() => f(POLICY_URL, { signal: AbortSignal.timeout(200) }));
        const conn = await mute.accept();
        const eof = conn.read(new Uint8Array(4096)).then(() => conn.read(new Uint8Array(1)));
        try {
          timedOut(await fetching);
          // Deno 2.9 (rustls-tokio-stream) keeps the socket of an unfinished handshake open
          // until the handshake ends, whatever the TlsConn's close: the peer sees no close.
          // Should it now, Deno has changed: update the module comment.
          assertEquals(await settlesWithin(eof, 500), false, "the peer saw the close");
        } finally {
          conn.close();
          mute.close();
          await eof.catch(() => {});
        }
      });

      await t.step("no response after the request", async () => {
        const f = addressFetch(via(raw.port, cert));
        stall("");
        timedOut(await quick(() => f(POLICY_URL, { signal: AbortSignal.timeout(200) })));
        await soon(clientClosed, "the connection closed");
        stall("");
        const e = await quick(() =>
          fetchStsPolicy("example.test", { fetch: f as typeof fetch, timeoutMs: 300 })
        );
        assertMatch(e.message, /no answer within 300 ms/);
        await soon(clientClosed, "the connection closed");
      });

      await t.step("half a head, then silence", async () => {
        stall("HTTP/1.1 200 OK\r\nContent-Ty");
        const f = addressFetch(via(raw.port, cert));
        timedOut(await quick(() => f(POLICY_URL, { signal: AbortSignal.timeout(200) })));
        await soon(clientClosed, "the connection closed");
      });

      await t.step("a body that stalls errors with the signal's reason", async () => {
        const f = addressFetch(via(raw.port, cert));
        stall("HTTP/1.1 200 OK\r\n\r\nversion: STSv1\r\n");
        const res = await f(POLICY_URL, { signal: AbortSignal.timeout(300) });
        timedOut(await quick(() => res.text())); // aborted during a read
        await soon(clientClosed, "the connection closed");
        stall("HTTP/1.1 200 OK\r\n\r\nversion: STSv1\r\n");
        const later = await f(POLICY_URL, { signal: AbortSignal.timeout(300) });
        const reader = later.body!.getReader();
        assertEquals(new TextDecoder().decode((await reader.read()).value), "version: STSv1\r\n");
        await soon(clientClosed, "the connection closed"); // aborted with no read pending
        timedOut(await quick(() => reader.read()));
      });

      await t.step("a cancelled body closes the connection", async () => {
        stall("HTTP/1.1 200 OK\r\n\r\nstart");
        const res = await addressFetch(via(raw.port, cert))(POLICY_URL);
        const reader = res.body!.getReader();
        await reader.read();
        const pending = reader.read();
        await reader.cancel();
        assertEquals((await pending).done, true);
        await soon(clientClosed, "the connection closed");
      });

      await t.step("a body read to its end closes the connection", async () => {
        stall("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        const res = await addressFetch(via(raw.port, cert))(POLICY_URL);
        assertEquals(await res.text(), "ok");
        await soon(clientClosed, "the connection closed");
      });
    } finally {
      await raw.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "lib/mtasts addressFetch needs --allow-net for the address only",
  ignore: noOpenssl,
  ...sanitize,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const cert = await makeTestCert(dir, "mta-sts.example.test");
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: cert.cert, key: cert.key, onListen() {} },
      () => new Response(POLICY, { headers: { "content-type": "text/plain" } }),
    );
    const port = server.addr.port;
    const script = `${dir}/get.ts`;
    await Deno.writeTextFile(
      script,
      `import { addressFetch } from ${JSON.stringify(import.meta.resolve("./address_fetch.ts"))};
const [url, caFile, how] = Deno.args;
const caCerts = [await Deno.readTextFile(caFile)];
const f = how === "fetch"
  ? (u: string) => fetch(u, { client: Deno.createHttpClient({ caCerts }) })
  : addressFetch({ resolve: () => Promise.resolve(["127.0.0.1"]), caCerts });
try {
  const res = await f(url);
  console.log(res.status, JSON.stringify(await res.text()));
} catch (e) {
  const cause = (e as Error).cause;
  console.log("failed:", (e as Error).name, (e as Error).message, cause instanceof Error ? cause.message : "");
}
`,
    );
    const run = async (allowNet: string, how = "addressFetch") => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-config",
          "--no-prompt",
          `--allow-net=${allowNet}`,
          `--allow-read=${dir}`,
          script,
          `https://mta-sts.example.test:${port}/.well-known/mta-sts.txt`,
          cert.caFile,
          how,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      return new TextDecoder().decode(out.stdout).trim();
    };
    try {
      const got = `200 ${JSON.stringify(POLICY)}`;
      assertEquals(await run(`127.0.0.1:${port}`), got);
      assertEquals(await run(`0.0.0.0/0:${port}`), got); // the sandbox's grant: any IPv4 address
      // The global fetch, under the same grant, is refused for the host name.
      assertMatch(
        await run(`127.0.0.1:${port}`, "fetch"),
        /failed: NotCapable .*mta-sts.example.test/,
      );
      assertMatch(
        await run(`127.0.0.2:${port}`),
        /failed: TypeError fetch failed mta-sts.example.test: cannot connect .*Requires net access to "127.0.0.1:/,
      );
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
