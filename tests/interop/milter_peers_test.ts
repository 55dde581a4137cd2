/**
 * The real milters of tests/helpers/milter_peers.ts work as milters, seen
 * from miltertest(8) playing the MTA, before any Postwarden test relies on
 * them:
 *
 * - OpenDKIM signs a message from 127.0.0.1 (a DKIM-Signature inserted at
 *   end of message, d= and s= as asked), the signature checks out with
 *   the public key from the TXT record it returned (verified here with
 *   WebCrypto, an independent verifier), and the same OpenDKIM verifies it
 *   on a message from elsewhere (dkim=pass) without DNS, and fails it when
 *   the body was changed.
 * - rspamd accepts a plain message, adding X-Spamd-Result and
 *   X-Spam-Status, and rejects one holding GTUBE.
 * - clamav-milter accepts a clean message (X-Virus-Status: Clean) and
 *   rejects EICAR, in the body and in a base64 attachment.
 *
 * Each peer is started privately and stopped in a finally. Needs root;
 * without the peers or root the test is skipped loudly, under CI=true it
 * fails.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { havePeer } from "../helpers/peers.ts";
import {
  EICAR,
  GTUBE,
  type MilterMessage,
  milterMessage,
  type MilterPeer,
  MILTERTEST,
  startClamavMilter,
  startOpenDkim,
  startRspamd,
} from "../helpers/milter_peers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const HEADERS: [string, string][] = [
  ["From", "Alice <alice@example.com>"],
  ["To", "bob@example.net"],
  ["Subject", "milter interop"],
  ["Date", "Thu, 03 Dec 2026 10:00:00 +0000"],
  ["Message-ID", "<milter-interop@example.com>"],
];

function message(body: string, more: Partial<MilterMessage> = {}): MilterMessage {
  return { from: "alice@example.com", to: ["bob@example.net"], headers: HEADERS, body, ...more };
}

/** Runs `fn` with a started peer, printing its log if `fn` fails, and stops it. */
async function withPeer<P extends MilterPeer>(
  peer: P | null,
  fn: (p: P) => Promise<void>,
): Promise<void> {
  if (!peer) return;
  try {
    await fn(peer);
  } catch (e) {
    console.error(await peer.log());
    throw e;
  } finally {
    await peer.stop();
  }
}

/** The value of the one added header field named `name`. */
function added(verdict: { added: { name: string; value: string }[] }, name: string): string {
  const found = verdict.added.filter((h) => h.name.toLowerCase() === name.toLowerCase());
  assertEquals(found.length, 1, `${name} in ${JSON.stringify(verdict.added)}`);
  return found[0].value;
}

/** A DKIM-Signature's tags (RFC 6376 3.2), whitespace removed from values. */
function dkimTags(value: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of value.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    tags[part.slice(0, eq).trim()] = part.slice(eq + 1).replace(/\s+/g, "");
  }
  return tags;
}

function base64(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)));
}

function unbase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** A header field in relaxed canonical form (RFC 6376 3.4.2), without its CRLF. */
function relaxedHeader(name: string, value: string): string {
  return `${name.toLowerCase()}:${value.replace(/\r?\n/g, "").replace(/[ \t]+/g, " ").trim()}`;
}

/**
 * Checks a relaxed/simple rsa-sha256 DKIM signature over `headers` and
 * `body` with the public key in the TXT record `txt`: the body hash, then
 * the signature.
 */
async function dkimVerifies(
  signature: string,
  headers: [string, string][],
  body: string,
  txt: string,
): Promise<boolean> {
  const tags = dkimTags(signature);
  const enc = new TextEncoder();
  const simpleBody = body.replace(/(\r\n)*$/, "") + "\r\n";
  const bh = base64(await crypto.subtle.digest("SHA-256", enc.encode(simpleBody)));
  if (bh !== tags.bh) return false;
  const signed = tags.h.split(":").map((name) => {
    const h = headers.findLast(([n]) => n.toLowerCase() === name.toLowerCase());
    return h ? relaxedHeader(h[0], h[1]) + "\r\n" : "";
  }).join("");
  const unsigned = signature.replace(/(^|;)(\s*b=)[^;]*/, "$1$2");
  const data = signed + relaxedHeader("DKIM-Signature", unsigned);
  const p = dkimTags(txt).p;
  const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const key = await crypto.subtle.importKey("spki", unbase64(p), alg, false, ["verify"]);
  return await crypto.subtle.verify(alg, key, unbase64(tags.b), enc.encode(data));
}

Deno.test({
  name: "milter peers: OpenDKIM signs, its TXT record verifies the signature, it verifies too",
  ...opts,
  fn: async () => {
    if (!havePeer(MILTERTEST)) return;
    const body = "Hello Bob.\r\nThis one is signed.\r\n";
    await withPeer(
      await startOpenDkim({ domain: "example.com", selector: "postwarden", mode: "sv" }),
      async (dkim) => {
        assertEquals(dkim.txtName, "postwarden._domainkey.example.com");
        assertMatch(dkim.txtRecord, /^v=DKIM1; h=sha256; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);

        const signed = await milterMessage(dkim.port, message(body, { clientIp: "127.0.0.1" }), {
          headers: ["DKIM-Signature"],
        });
        assertEquals([signed.reply, signed.step], ["accept", "eom"]);
        const signature = added(signed, "DKIM-Signature");
        const tags = dkimTags(signature);
        assertEquals(
          [tags.v, tags.a, tags.c, tags.d, tags.s],
          ["1", "rsa-sha256", "relaxed/simple", "example.com", "postwarden"],
        );
        assertMatch(tags.h.toLowerCase(), /(^|:)from(:|$)/);
        assert(
          await dkimVerifies(signature, HEADERS, body, dkim.txtRecord),
          `WebCrypto does not verify ${signature} with ${dkim.txtRecord}`,
        );
        const forged = HEADERS.map(([n, v]): [string, string] => [n, n === "Subject" ? "x" : v]);
        assert(!(await dkimVerifies(signature, forged, body, dkim.txtRecord)), "forged Subject");

        const inbound = (b: string) =>
          milterMessage(
            dkim.port,
            message(b, { headers: [["DKIM-Signature", signature], ...HEADERS] }),
            { headers: ["Authentication-Results"] },
          );
        const good = await inbound(body);
        assertEquals(good.reply, "accept");
        const results = added(good, "Authentication-Results");
        assertMatch(results, /dkim=pass .*header\.d=example\.com/s);
        assertStringIncludes(results, "header.s=postwarden");

        const bad = await inbound(body.replace("signed", "changed"));
        assertMatch(added(bad, "Authentication-Results"), /dkim=fail/);
      },
    );
  },
});

Deno.test({
  name: "milter peers: rspamd annotates plain mail and rejects GTUBE",
  ...opts,
  fn: async () => {
    if (!havePeer(MILTERTEST)) return;
    await withPeer(await startRspamd(), async (rspamd) => {
      const headers = ["X-Spamd-Result", "X-Spam-Status", "X-Rspamd-Server"];
      const plain = await milterMessage(rspamd.port, message("Hello Bob.\r\n"), { headers });
      assertEquals([plain.reply, plain.step], ["accept", "eom"]);
      assertMatch(added(plain, "X-Spam-Status"), /^No, score=-?\d+\.\d+$/);
      assertMatch(added(plain, "X-Spamd-Result"), /^default: False \[/);

      const spam = await milterMessage(
        rspamd.port,
        message(`This is spam.\r\n${GTUBE}\r\n`),
        { headers },
      );
      assertEquals([spam.reply, spam.step], ["replycode", "eom"]);
      assertEquals(spam.added, []);
      assertStringIncludes(await rspamd.log(), "(reject)");
    });
  },
});

Deno.test({
  name: "milter peers: clamav-milter accepts clean mail and rejects EICAR",
  ...opts,
  fn: async () => {
    if (!havePeer(MILTERTEST)) return;
    await withPeer(await startClamavMilter(), async (clamav) => {
      const headers = ["X-Virus-Scanned", "X-Virus-Status"];
      const clean = await milterMessage(clamav.port, message("Hello Bob.\r\n"), { headers });
      assertEquals([clean.reply, clean.step], ["accept", "eom"]);
      assertEquals(added(clean, "X-Virus-Status"), "Clean");

      const inBody = await milterMessage(clamav.port, message(`${EICAR}\r\n`), { headers });
      assertEquals([inBody.reply, inBody.step], ["reject", "eom"]);

      const mime = [
        "--b1",
        "Content-Type: text/plain",
        "",
        "See the attachment.",
        "--b1",
        "Content-Type: application/octet-stream",
        'Content-Disposition: attachment; filename="eicar.com"',
        "Content-Transfer-Encoding: base64",
        "",
        btoa(EICAR),
        "--b1--",
        "",
      ].join("\r\n");
      const attached = await milterMessage(
        clamav.port,
        message(mime, {
          headers: [
            ...HEADERS,
            ["MIME-Version", "1.0"],
            ["Content-Type", 'multipart/mixed; boundary="b1"'],
          ],
        }),
        { headers },
      );
      assertEquals([attached.reply, attached.step], ["reject", "eom"]);
      assertStringIncludes(await clamav.log(), "Eicar-Test-Signature");
    });
  },
});
