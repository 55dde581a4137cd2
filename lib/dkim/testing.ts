/**
 * Test helpers: the example of RFC 8463 Appendix A (its keys, key records
 * and the message it signs twice, with ed25519-sha256 and rsa-sha256), and
 * fresh signing keys with their key records.
 */
import { generateKeyPairSync } from "node:crypto";
import { BodyHasher, parseCanonicalization } from "./canon.ts";
import { type DkimSigningKey, keyRecordFor, loadSigningKey, signData } from "./key.ts";
import { MessageReader } from "./message.ts";
import { signedHeaderData } from "./signature.ts";
import { parseTagList } from "./tags.ts";

/** RFC 8463 A.1: the Ed25519 private key (a 32-byte seed, RFC 8032's first test vector). */
export const RFC8463_ED25519_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

/** RFC 8463 A.1: the RSA private key (1024 bits, PKCS#1). */
export const RFC8463_RSA_PEM = `-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
-----END RSA PRIVATE KEY-----
`;

/** RFC 8463 A.2: the key records, by name. */
export const RFC8463_RECORDS: Record<string, string[][]> = {
  "brisbane._domainkey.football.example.com": [[
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
  ]],
  "test._domainkey.football.example.com": [[
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR",
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC",
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3",
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
  ]],
};

/** RFC 8463 A.3: the signed message, CRLF line ends (the signatures' t= is 2018-06-10). */
export const RFC8463_MESSAGE = [
  "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;",
  " d=football.example.com; i=@football.example.com;",
  " q=dns/txt; s=brisbane; t=1528637909; h=from : to :",
  " subject : date : message-id : from : subject : date;",
  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
  " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus",
  " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
  "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;",
  " d=football.example.com; i=@football.example.com;",
  " q=dns/txt; s=test; t=1528637909; h=from : to : subject :",
  " date : message-id : from : subject : date;",
  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
  " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3",
  " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz",
  " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=",
  "From: Joe SixPack <joe@football.example.com>",
  "To: Suzie Q <suzie@shopping.example.net>",
  "Subject: Is dinner ready?",
  "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)",
  "Message-ID: <20030712040037.46341.5F8J@football.example.com>",
  "",
  "Hi.",
  "",
  "We lost the game.  Are you hungry yet?",
  "",
  "Joe.",
  "",
].join("\r\n");

/** The PKCS#8 PEM of an Ed25519 key given by its 32-byte seed (base64). */
export function ed25519Pem(seed: string): string {
  const der = new Uint8Array([
    ...Uint8Array.fromHex("302e020100300506032b657004220420"),
    ...Uint8Array.fromBase64(seed),
  ]);
  return `-----BEGIN PRIVATE KEY-----\n${der.toBase64()}\n-----END PRIVATE KEY-----\n`;
}

/** A new key of the algorithm, its PEM (PKCS#1 for RSA) and its key record. */
export async function testKey(
  algorithm: "rsa" | "ed25519",
  bits = 2048,
): Promise<{ key: DkimSigningKey; pem: string; record: string }> {
  const { privateKey } = algorithm === "rsa"
    ? generateKeyPairSync("rsa", { modulusLength: bits })
    : generateKeyPairSync("ed25519");
  const pem = privateKey.export({ type: algorithm === "rsa" ? "pkcs1" : "pkcs8", format: "pem" })
    .toString();
  const key = await loadSigningKey(pem);
  return { key, pem, record: keyRecordFor(key) };
}

/** Bytes of a text, each character one byte (so "\xe9" is the byte 0xE9). */
export function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/**
 * A DKIM-Signature field with the tags given (as written, without bh= and
 * b=) and a valid bh= and b= for `message` under `key`, whatever the tags
 * say: for testing what a verifier makes of tags signMessage never writes
 * (l=, i=, x=, an h= without From, ...). `bh` replaces the body hash.
 */
export function craftSignature(
  message: Uint8Array,
  { tags, key, bh }: { tags: string; key: DkimSigningKey; bh?: string },
): string {
  const t = parseTagList(tags);
  const canon = parseCanonicalization(t.get("c") ?? "simple/simple") ?? {
    header: "relaxed",
    body: "relaxed",
  };
  const reader = new MessageReader();
  const hasher = new BodyHasher(canon.body, {
    limit: t.has("l") ? Number(t.get("l")) : undefined,
  });
  hasher.update(reader.push(message) ?? reader.end());
  const fields = reader.fields!;
  const unsigned = `DKIM-Signature: ${tags}; bh=${bh ?? hasher.digest().hash.toBase64()}; b=`;
  const names = (t.get("h") ?? "").split(":").map((n) => n.trim());
  const data = signedHeaderData(fields, { names, signatureField: unsigned, canon: canon.header });
  return `${unsigned}${signData(key, data).toBase64()}\r\n`;
}
