/**
 * signMessage and DkimVerifier compared with an independent
 * implementation, mailauth (npm, strict RFC mode): what one signs, the
 * other verifies, for RSA and Ed25519 keys, the four canonicalizations and
 * messages with repeated and folded fields, trailing blank lines, empty
 * bodies and 8-bit bytes; and both agree that tampered copies fail. On
 * signatures that cannot be evaluated, the verdicts are compared too:
 * mailauth reports "neutral" where this verifier, as asked of it, reports
 * permerror, and two choices differ (listed in the test).
 * Skipped when mailauth cannot be loaded (not in the npm cache).
 */
import { Buffer } from "node:buffer";
import { assertEquals } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../dns/testing.ts";
import { signMessage } from "./sign.ts";
import { bytes, craftSignature, testKey } from "./testing.ts";
import { DkimVerifier } from "./verify.ts";

type MailauthSign = (input: Buffer, opts: Record<string, unknown>) => Promise<{
  signatures: string;
  errors: unknown[];
}>;
type MailauthVerify = (input: Buffer, opts: Record<string, unknown>) => Promise<{
  results: { status: { result: string; comment?: string } }[];
}>;

let mailauth: { dkimSign: MailauthSign; dkimVerify: MailauthVerify } | undefined;
try {
  mailauth = (await import("mailauth")) as unknown as typeof mailauth;
} catch {
  mailauth = undefined;
}

const NOW = new Date("2026-12-01T12:00:00Z");

const MESSAGES: Record<string, string> = {
  "repeated and folded fields": "Received: from a.example by b.example;\r\n" +
    "\tTue, 1 Dec 2026 11:00:00 +0000\r\nReceived: from c.example\r\n" +
    "From: Joe Q <joe@example.com>\r\nTo: ann@example.org,\r\n    bob@example.org\r\n" +
    "Cc: carl@example.org\r\nCc: dora@example.org\r\nSubject: a subject\r\n  that is folded \r\n" +
    "Date: Tue, 01 Dec 2026 11:59:00 +0000\r\nMessage-ID: <m1@example.com>\r\n" +
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
    "Hello,  world.\t\r\n \r\nSecond paragraph.\r\n",
  "trailing blank lines": "From: joe@example.com\r\nSubject: x\r\n\r\nbody\r\n\r\n\r\n \r\n\r\n",
  "empty body": "From: joe@example.com\r\nSubject: nothing\r\n\r\n",
  "only blank lines": "From: joe@example.com\r\nSubject: nothing\r\n\r\n\r\n\r\n",
  "8-bit bytes": "From: =?utf-8?q?Jos=C3=A9?= <jose@example.com>\r\nSubject: caf\xc3\xa9 \xe9\r\n" +
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
    "Ol\xc3\xa1 \xe0 tous\r\n\xff\xfe raw bytes \x80\r\n",
  "long lines and whitespace": `From: joe@example.com\r\nSubject: ${"word ".repeat(40)}\r\n\r\n` +
    `${"x".repeat(990)}\r\n\t \tindented\t \r\n  \r\nend`,
};

const CANONICALIZATIONS = ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"];

/** Changes the body (first) and a signed header field (second): both must fail. */
function tampered(message: string): string[] {
  return [`${message}tampered\r\n`, message.replace("From: ", "From: x")];
}

type Zone = { txt: Record<string, string[][]> };

/** Both verifiers' results for a message with the keys of `zone`. */
function verifiers(zone: Zone) {
  const nodeResolver = (name: string, type: string) => {
    const records = type === "TXT" && zone.txt[name.toLowerCase()];
    return records
      ? Promise.resolve(records)
      : Promise.reject(Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" }));
  };
  return {
    theirs: async (message: string) => {
      const r = await mailauth!.dkimVerify(Buffer.from(bytes(message)), {
        resolver: nodeResolver,
        curTime: NOW,
        strict: true,
      });
      return r.results.map((x) => x.status.result);
    },
    ours: async (message: string) => {
      const v = new DkimVerifier({ now: () => NOW });
      v.write(bytes(message));
      return (await v.finish(fakeResolver(zone))).map((x) => x.result);
    },
  };
}

Deno.test({
  name: "signMessage and DkimVerifier agree with mailauth",
  ignore: mailauth === undefined,
  async fn(t) {
    const { dkimSign } = mailauth!;
    const keys = { rsa: await testKey("rsa"), ed25519: await testKey("ed25519") };
    const zone = {
      txt: {
        "rsa._domainkey.example.com": [[keys.rsa.record]],
        "ed25519._domainkey.example.com": [[keys.ed25519.record]],
      },
    };
    const { theirs, ours } = verifiers(zone);

    for (const [alg, { key, pem }] of Object.entries(keys)) {
      for (const c of CANONICALIZATIONS) {
        for (const [name, message] of Object.entries(MESSAGES)) {
          await t.step(`${alg} ${c}, ${name}: ours signs, mailauth verifies`, async () => {
            const field = await signMessage([bytes(message)], {
              domain: "example.com",
              selector: alg,
              key,
              canonicalization: c,
              time: NOW,
            });
            assertEquals(await theirs(field + message), ["pass"]);
            for (const bad of tampered(field + message)) {
              assertEquals(await theirs(bad), ["fail"]);
              assertEquals(await ours(bad), ["fail"]);
            }
          });
          await t.step(`${alg} ${c}, ${name}: mailauth signs, ours verifies`, async () => {
            const { signatures, errors } = await dkimSign(Buffer.from(bytes(message)), {
              canonicalization: c,
              signTime: NOW,
              strict: true,
              signatureData: [{ signingDomain: "example.com", selector: alg, privateKey: pem }],
            });
            assertEquals([errors, signatures === ""], [[], false]);
            assertEquals(await ours(signatures + message), ["pass"]);
            for (const bad of tampered(signatures + message)) {
              assertEquals(await ours(bad), ["fail"]);
            }
          });
        }
      }
    }
  },
});

Deno.test({
  name: "DkimVerifier and mailauth on signatures that do not verify",
  ignore: mailauth === undefined,
  async fn(t) {
    const { key, record, pem } = await testKey("rsa");
    const p = record.slice(record.indexOf("p="));
    const T = NOW.getTime() / 1000;
    const message =
      "From: Joe <joe@example.com>\r\nTo: ann@example.org\r\nSubject: hi\r\n\r\nHello.\r\n";
    const tags = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=rsa; h=from:to:subject";
    const keyName = "rsa._domainkey.example.com";
    /** [case, extra tags, key records, ours, mailauth's] */
    const cases: [string, string, string[][], string, string][] = [
      ["valid", "", [[record]], "pass", "pass"],
      ["expired", `; t=${T - 100}; x=${T - 1}`, [[record]], "permerror", "neutral"],
      ["x= before t=", `; t=${T - 10}; x=${T - 20}`, [[record]], "permerror", "neutral"],
      ["t= in the future", `; t=${T + 86400}`, [[record]], "pass", "pass"],
      ["i= outside d=", "; i=@example.net", [[record]], "permerror", "neutral"],
      ["h= without From", "; h=to:subject", [[record]], "permerror", "neutral"],
      ["l= the body's length", "; l=8", [[record]], "pass", "pass"],
      ["revoked key", "", [["v=DKIM1; p="]], "permerror", "neutral"],
      ["k= mismatch", "", [[`v=DKIM1; k=ed25519; ${p}`]], "permerror", "neutral"],
      ["key h=sha1", "", [[`v=DKIM1; h=sha1; ${p}`]], "permerror", "neutral"],
      [
        "t=s, i= in a subdomain",
        "; i=@a.example.com",
        [[`v=DKIM1; t=s; ${p}`]],
        "permerror",
        "neutral",
      ],
      ["t=s, i= in d=", "; i=@example.com", [[`v=DKIM1; t=s; ${p}`]], "pass", "pass"],
      ["a key record of garbage", "", [["hello"]], "permerror", "neutral"],
      ["no key record", "", [], "permerror", "neutral"],
      // The two differences. RFC 6376 section 3.5: l= must not be larger than the canonical
      // body (mailauth hashes what there is); section 6.1.2 step 5: a record that is not a
      // key record is ignored (mailauth reads only the first TXT record).
      ["l= past the body", "; l=9", [[record]], "permerror", "pass"],
      ["the key record second", "", [["v=spf1 -all"], [record]], "pass", "neutral"],
    ];
    for (const [name, extra, records, expectOurs, expectTheirs] of cases) {
      await t.step(name, async () => {
        const all = extra.startsWith("; h=") ? tags.replace(/; h=[^;]*/, extra) : tags + extra;
        const signed = craftSignature(bytes(message), { tags: all, key }) + message;
        const { ours, theirs } = verifiers({ txt: records.length ? { [keyName]: records } : {} });
        assertEquals([await ours(signed), await theirs(signed)], [[expectOurs], [expectTheirs]]);
      });
    }
    await t.step("mailauth signs with l=; appended text is not covered by either", async () => {
      const { signatures } = await mailauth!.dkimSign(Buffer.from(bytes(message)), {
        signTime: NOW,
        strict: true,
        signatureData: [{
          signingDomain: "example.com",
          selector: "rsa",
          privateKey: pem,
          maxBodyLength: 5,
        }],
      });
      const { ours, theirs } = verifiers({ txt: { [keyName]: [[record]] } });
      const appended = `${signatures}${message}P.S. appended\r\n`;
      assertEquals([await ours(appended), await theirs(appended)], [["pass"], ["pass"]]);
    });
  },
});
