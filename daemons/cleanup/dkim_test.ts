import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import { Maps } from "../../lib/maps/mod.ts";
import { DkimVerifier } from "../../lib/dkim/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { HeaderSplitter } from "../../lib/mime/mod.ts";
import { DkimSigner, DkimSigningError, fromDomain, parseSigningValue } from "./dkim.ts";

const enc = new TextEncoder();

Deno.test("signing table values: selector:keyfile items inside the key directory", () => {
  assertEquals(parseSigningValue("s1:a.pem, s2:/k/b.pem", "/k/"), [
    { selector: "s1", path: "/k/a.pem" },
    { selector: "s2", path: "/k/b.pem" },
  ]);
  for (const bad of ["s1", ":a.pem", "s1:", "s 1:a", "s1:../etc/shadow", "s1:/etc/shadow", ""]) {
    assertThrows(() => parseSigningValue(bad, "/k"), DkimSigningError);
  }
  // A path that only starts like the directory is not inside it.
  assertThrows(() => parseSigningValue("s:/kk/a.pem", "/k"), DkimSigningError);
});

Deno.test("fromDomain: the first From: address's domain, lower case", () => {
  const h = (v: string) => [{ name: "From", value: v, raw: new Uint8Array() }];
  assertEquals(fromDomain(h("Joe <joe@Example.COM>")), "example.com");
  assertEquals(fromDomain(h("a@one.test, b@two.test")), "one.test");
  assertEquals(fromDomain(h("undisclosed")), null);
  assertEquals(fromDomain([]), null);
});

/** An Ed25519 key pair: the PKCS#8 PEM and the DKIM key record. */
async function edKey(): Promise<{ pem: string; record: string }> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  return {
    pem: `-----BEGIN PRIVATE KEY-----\n${b64(pkcs8)}\n-----END PRIVATE KEY-----\n`,
    record: `v=DKIM1; k=ed25519; p=${b64(raw)}`,
  };
}

function headersOf(content: Uint8Array[]) {
  const s = new HeaderSplitter({ maxBytes: 1 << 20 });
  for (const c of content) {
    const r = s.push(c);
    if (r.done) return r.headers!;
  }
  return s.end().headers;
}

Deno.test("DkimSigner: signs by the From: domain, a key read once; a bad key refuses", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await edKey();
    await Deno.writeTextFile(`${dir}/ed.pem`, key.pem);
    await Deno.writeTextFile(`${dir}/bad.pem`, "not a key\n");
    const table = await Maps.open(
      "postwarden_dkim_signing_table",
      "inline:{ example.com=ed:ed.pem, broken.test=x:bad.pem, gone.test=x:missing.pem }",
    );
    const signer = new DkimSigner(table, dir);
    const message = (from: string) => [
      enc.encode(`From: <${from}>\r\nSubject: hi\r\n\r\n`),
      enc.encode("body\r\n"),
    ];
    const content = message("u@example.com");
    const sigs = await signer.signatures(headersOf(content), content);
    assertEquals(sigs.length, 1);
    const v = new DkimVerifier();
    for (const c of [...sigs, ...content]) v.write(c);
    const results = await v.finish(
      fakeResolver({ txt: { "ed._domainkey.example.com": [[key.record]] } }),
    );
    assertEquals(results.map((r) => r.result), ["pass"]);
    // No entry: nothing to sign.
    const other = message("u@other.test");
    assertEquals(await signer.signatures(headersOf(other), other), []);
    for (const from of ["u@broken.test", "u@gone.test"]) {
      const c = message(from);
      await assertRejects(() => signer.signatures(headersOf(c), c), DkimSigningError);
    }
    // The key is cached: removing the file does not stop signing (for a minute).
    await Deno.remove(`${dir}/ed.pem`);
    assert((await signer.signatures(headersOf(content), content)).length === 1);
    await table.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
