/**
 * sealMessage and ArcValidator compared with an independent
 * implementation, mailauth (npm, strict RFC mode): chains of one to three
 * hops sealed by one validate with the other, for RSA and Ed25519 keys
 * and messages with repeated and folded fields, 8-bit bytes and an empty
 * body, with a field added between hops; chains mixing both sealers
 * validate with both; and both fail the same tampered chains.
 * Skipped when mailauth cannot be loaded (not in the npm cache).
 */
import { Buffer } from "node:buffer";
import { assertEquals } from "../../tests/helpers/assert.ts";
import { testKey } from "../dkim/testing.ts";
import { sealMessage } from "./seal.ts";
import { bytes, craftSet, NOW, validate, type Zone } from "./testing.ts";

type Authenticate = (input: Buffer, opts: Record<string, unknown>) => Promise<{
  arc: { status: { result: string; comment?: string }; i: number | false };
}>;
type MailauthSeal = (input: Buffer, opts: Record<string, unknown>) => Promise<Buffer>;

let mailauth: { authenticate: Authenticate; sealMessage: MailauthSeal } | undefined;
try {
  mailauth = (await import("mailauth")) as unknown as typeof mailauth;
} catch {
  mailauth = undefined;
}

const MESSAGES: Record<string, string> = {
  "repeated and folded fields": "Received: from a.example by b.example;\r\n" +
    "\tTue, 1 Dec 2026 11:00:00 +0000\r\nFrom: Joe Q <joe@example.org>\r\n" +
    "To: ann@example.net,\r\n    bob@example.net\r\nCc: carl@example.net\r\nCc: dora@example.net\r\n" +
    "Subject: a subject\r\n  that is folded \r\nDate: Tue, 01 Dec 2026 11:59:00 +0000\r\n" +
    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=AAAA; b=AAAA\r\n" +
    "Message-ID: <m1@example.org>\r\nMIME-Version: 1.0\r\n" +
    "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello,  world.\t\r\n \r\nSecond.\r\n\r\n",
  "8-bit bytes": "From: =?utf-8?q?Jos=C3=A9?= <jose@example.org>\r\nSubject: caf\xc3\xa9 \xe9\r\n" +
    "To: list@example.net\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
    "Ol\xc3\xa1 \xe0 tous\r\n\xff\xfe raw bytes \x80\r\n",
  "empty body": "From: joe@example.org\r\nTo: list@example.net\r\nSubject: nothing\r\n\r\n",
};

Deno.test({
  name: "sealMessage and ArcValidator agree with mailauth",
  ignore: mailauth === undefined,
  async fn(t) {
    const keys = { rsa: await testKey("rsa"), ed: await testKey("ed25519") };
    const zone: Zone = {
      txt: {
        "rsa._domainkey.example.com": [[keys.rsa.record]],
        "ed._domainkey.example.com": [[keys.ed.record]],
      },
    };
    const nodeResolver = (name: string, type: string) => {
      const records = type === "TXT" && zone.txt![name.toLowerCase()];
      return records
        ? Promise.resolve(records)
        : Promise.reject(Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" }));
    };
    /** mailauth's ARC verdict: "pass i=2", "fail (reason)". */
    const theirs = async (message: string) => {
      const { arc } = await mailauth!.authenticate(Buffer.from(bytes(message)), {
        resolver: nodeResolver,
        mta: "mx.example.net",
        ip: "192.0.2.1",
        helo: "relay.example.net",
        sender: "joe@example.org",
        strict: true,
        disableDmarc: true,
        disableBimi: true,
      });
      return arc.status.result === "pass" ? `pass i=${arc.i}` : arc.status.result;
    };
    const ours = async (message: string) => {
      const r = await validate(message, zone);
      return r.status === "pass" ? `pass i=${r.instance}` : r.status;
    };
    /** One hop: validate, seal (by us or mailauth), add a Received field as the next hop. */
    const hop = async (message: string, n: number, by: "ours" | "mailauth", alg: "rsa" | "ed") => {
      const validation = await validate(message, zone);
      const set = by === "ours"
        ? await sealMessage([bytes(message)], validation, `spf=pass (hop ${n})`, {
          domain: "example.com",
          selector: alg,
          key: keys[alg].key,
          authservId: `hop${n}.example.com`,
          time: NOW,
        })
        : (await mailauth!.sealMessage(Buffer.from(bytes(message)), {
          signingDomain: "example.com",
          selector: alg,
          privateKey: keys[alg].pem,
          authResults: `hop${n}.example.com; spf=pass (hop ${n})`,
          cv: validation.status,
          signTime: NOW,
        })).toString("latin1");
      return `Received: from hop${n}.example.com by hop${n + 1}\r\n${set}${message}`;
    };

    for (const alg of ["rsa", "ed"] as const) {
      for (const [name, message] of Object.entries(MESSAGES)) {
        for (const by of ["ours", "mailauth"] as const) {
          await t.step(`${alg}, ${name}: ${by} seals 1 to 3 hops, both validate`, async () => {
            let m = message;
            for (let n = 1; n <= 3; n++) {
              m = await hop(m, n, by, alg);
              assertEquals([await ours(m), await theirs(m)], [`pass i=${n}`, `pass i=${n}`]);
            }
          });
        }
        await t.step(`${alg}, ${name}: ours, mailauth, ours`, async () => {
          let m = await hop(message, 1, "ours", alg);
          m = await hop(m, 2, "mailauth", alg === "rsa" ? "ed" : "rsa");
          m = await hop(m, 3, "ours", alg);
          assertEquals([await ours(m), await theirs(m)], ["pass i=3", "pass i=3"]);
        });
      }
    }

    const message = MESSAGES["repeated and folded fields"];
    const two = await hop(await hop(message, 1, "ours", "rsa"), 2, "ours", "ed");
    const byThem = await hop(await hop(message, 1, "mailauth", "ed"), 2, "mailauth", "rsa");
    const tampered: [string, (m: string) => string][] = [
      ["body modified", (m) => `${m}P.S.\r\n`],
      [
        "a signed field modified",
        (m) => m.replace("Subject: a subject", "Subject: [list] a subject"),
      ],
      [
        "the first hop's results modified",
        (m) => m.replace("spf=pass (hop 1)", "spf=fail (hop 1)"),
      ],
      ["a seal's t= modified", (m) => m.replace(/(ARC-Seal: i=1;[^]*?t=)\d+/, "$11")],
      [
        "set 1 removed",
        (m) => m.replace(/ARC-Seal: i=1;[^]*?ARC-Authentication-Results: i=1;.*\r\n/, ""),
      ],
      ["a seal duplicated", (m) => m.replace(/ARC-Seal: i=2;[^]*?\r\n(?=ARC-Message)/, "$&$&")],
      [
        "i=3 sealed cv=none",
        (m) => craftSet(m, { instance: 3, key: keys.rsa.key, cv: "none" }) + m,
      ],
      [
        "h= in a seal",
        (m) =>
          craftSet(m, { instance: 3, key: keys.rsa.key, cv: "pass", seal: (s) => `${s}; h=to` }) +
          m,
      ],
    ];
    for (const [what, change] of tampered) {
      for (const [by, m] of [["ours", two], ["mailauth", byThem]]) {
        await t.step(`both fail a chain sealed by ${by}: ${what}`, async () => {
          const bad = change(m);
          assertEquals(bad === m, false);
          assertEquals([await ours(bad), await theirs(bad)], ["fail", "fail"]);
        });
      }
    }
    await t.step("both fail what a cv=fail seal ends", async () => {
      const bad = await hop(`${two}P.S.\r\n`, 3, "ours", "rsa");
      assertEquals([await ours(bad), await theirs(bad)], ["fail", "fail"]);
    });
  },
});
