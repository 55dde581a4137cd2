/**
 * Cases of ValiMail's ARC test suite (github.com/ValiMail/arc_test_suite,
 * tests/arc-draft-validation-tests.yml at commit 2106cbdaf920), chains
 * signed by another implementation: each message is in
 * testdata/arc_test_suite/<case>.eml as the YAML gives it (LF line ends),
 * with the suite's expected cv and its key records. A selection: the
 * suite has many more cases, a few written against ARC drafts that RFC
 * 8617 changed. The suite's "dummy" key is RFC 8463's 1024-bit RSA key.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { validate } from "./testing.ts";

const ZONE = {
  txt: {
    "dummy._domainkey.example.org": [[
      "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3id" +
      "Y6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lx" +
      "j+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
    ]],
    "dummy2._domainkey.example2.org": [[
      "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDR3lRpGZS+xO96Znv/BPNQxi" +
      "m7ZD0v6yFmZa9Rni5FHCeWuQwcp+PH/XXOyF6JsmB+kS0ybxJnx594ulqH2KvLMNsGAD+yRl2bJSXbBH" +
      "ea7K9C5WX8Vjx3oPoGgw7QCONptnjUsbIIoxUZBEUe17eG44H/PbDqGwCBiyI20KEC/wIDAQAB",
    ]],
    "invalid._domainkey.example.org": [["v=DKIM1; k=rsa; omgwhatsgoingon"]],
  },
};

/** [case, the suite's cv, our reason, our oldest-pass (for a pass)] */
const CASES: [string, string, string, number?][] = [
  ["cv_base1", "none", "no ARC sets"],
  ["cv_pass_i1_1", "pass", "chain of 1 set validated", 0],
  ["cv_pass_i2_1", "pass", "chain of 2 sets validated", 0],
  ["cv_pass_i2_2", "pass", "chain of 2 sets validated", 0],
  ["cv_pass_i4_1", "pass", "chain of 4 sets validated", 0],
  ["cv_pass_i5_1", "pass", "chain of 5 sets validated", 0],
  // From changed after i=1: only the newest AMS counts (section 5.2 step 4).
  ["cv_pass_i2_1_ams1_invalid", "pass", "chain of 2 sets validated", 2],
  ["ams_as_diff_s_d", "pass", "chain of 1 set validated", 0],
  ["cv_fail_i1_ams_na", "fail", "i=1: no ARC-Message-Signature fields"],
  ["aar2_missing", "fail", "i=2: no ARC-Authentication-Results fields"],
  ["public_key_na", "fail", "i=1: ARC-Seal: no key for signature (na._domainkey.example.org)"],
  ["public_key_invalid", "fail", 'i=1: ARC-Seal: key record: " omgwhatsgoingon" has no "="'],
];

Deno.test("ValiMail's ARC test suite: validation cases", async (t) => {
  for (const [name, cv, reason, oldestPass] of CASES) {
    await t.step(name, async () => {
      const message = await Deno.readFile(
        new URL(`testdata/arc_test_suite/${name}.eml`, import.meta.url),
      );
      const r = await validate([message], ZONE);
      assertEquals([r.status, r.reason, r.oldestPass], [cv, reason, oldestPass]);
    });
  }
  await t.step("the sets of a passing chain, and the first hop's results", async () => {
    const message = await Deno.readFile(
      new URL("testdata/arc_test_suite/ams_as_diff_s_d.eml", import.meta.url),
    );
    assertEquals((await validate([message], ZONE)).sets, [{
      instance: 1,
      sealDomain: "example2.org",
      sealSelector: "dummy2",
      amsDomain: "example.org",
      amsSelector: "dummy",
      cv: "none",
      authResults: "lists.example.org; spf=pass smtp.mfrom=jqd@d1.example; " +
        "dkim=pass (1024-bit key) header.i=@d1.example; dmarc=pass",
    }]);
  });
});
