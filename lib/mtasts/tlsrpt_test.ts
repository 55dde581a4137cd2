/**
 * Tests of the TLS-RPT record (RFC 8460 3) and the aggregate report
 * (section 4): the report for a set of counters is compared with a
 * golden file shaped after the RFC's example (testdata/report.json).
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  mailtoAddress,
  parseTlsRptRecord,
  tlsRptReport,
  type TlsRptReportInput,
} from "./tlsrpt.ts";

Deno.test("lib/mtasts parseTlsRptRecord", async (t) => {
  await t.step("valid records", () => {
    const cases: [string, string[]][] = [
      ["v=TLSRPTv1; rua=mailto:reports@example.com", ["mailto:reports@example.com"]],
      ["v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt", [
        "https://reporting.example.com/v1/tlsrpt",
      ]],
      ["v=TLSRPTv1; rua=mailto:a@example.com , https://r.example.com/x;", [
        "mailto:a@example.com",
        "https://r.example.com/x",
      ]],
      ["v=TLSRPTv1; ext=1; rua=mailto:a@example.com", ["mailto:a@example.com"]],
      // Other schemes are dropped; a URI with an encoded comma is kept.
      ["v=TLSRPTv1; rua=ftp://x.example,mailto:a%2Cb@example.com", ["mailto:a%2Cb@example.com"]],
      ["v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", ["mailto:a@example.com"]],
    ];
    for (const [txt, rua] of cases) assertEquals(parseTlsRptRecord([[txt]]), { rua }, txt);
    assertEquals(parseTlsRptRecord([["v=spf1 -all"], ["v=TLSRPTv1; ", "rua=mailto:a@b.example"]]), {
      rua: ["mailto:a@b.example"],
    });
  });

  await t.step("invalid: null", () => {
    for (
      const txts of [
        [],
        [["v=TLSRPTv1"]],
        [["v=TLSRPTv1;"]],
        [["v=TLSRPTv1; ext=1"]], // no rua
        [["v=TLSRPTv1; rua=ftp://x.example"]], // no usable URI
        [["v=TLSRPTv1; rua=http://x.example/"]],
        [["v=TLSRPTv1; rua=mailto:nobody"]],
        [["v=TLSRPTv1; rua="]],
        [["v=TLSRPTv1; rua=mailto:a@example.com,"]],
        [["v=TLSRPTv1; rua=mailto:a@example.com"], ["v=TLSRPTv1; rua=mailto:b@example.com"]],
        [["v=tlsrptv1; rua=mailto:a@example.com"]],
        [["v=TLSRPTv1 rua=mailto:a@example.com"]],
        [["v=TLSRPTv1; rua=mailto:a b@example.com"]],
        [["v=TLSRPTv1; rua=https://x.example/\x00"]],
      ]
    ) {
      assertEquals(parseTlsRptRecord(txts), null, JSON.stringify(txts));
    }
  });
});

Deno.test("lib/mtasts tlsRptReport: the JSON of RFC 8460 section 4", async () => {
  const input: TlsRptReportInput = {
    organizationName: "Company-X",
    contactInfo: "sts-reporting@company-x.example",
    reportId: "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
    start: new Date("2016-04-01T00:00:00Z"),
    end: new Date("2016-04-01T23:59:59Z"),
    policies: [
      {
        policyType: "sts",
        policyDomain: "company-y.example",
        policyString: [
          "version: STSv1",
          "mode: testing",
          "mx: *.mail.company-y.example",
          "max_age: 86400",
        ],
        mxHost: ["*.mail.company-y.example"],
        successfulSessionCount: 5326,
        failures: [
          {
            resultType: "certificate-expired",
            sendingMtaIp: "2001:db8:abcd:0012::1",
            receivingMxHostname: "mx1.mail.company-y.example",
            failedSessionCount: 100,
          },
          {
            resultType: "starttls-not-supported",
            sendingMtaIp: "2001:db8:abcd:0013::1",
            receivingMxHostname: "mx2.mail.company-y.example",
            receivingIp: "203.0.113.56",
            failedSessionCount: 200,
            additionalInformation: "https://reports.company-x.example/report_info?id=5065427c-23d3",
          },
          {
            resultType: "validation-failure",
            sendingMtaIp: "198.51.100.62",
            receivingIp: "203.0.113.58",
            receivingMxHostname: "mx-backup.mail.company-y.example",
            failedSessionCount: 3,
            failureReasonCode: "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
          },
        ],
      },
      {
        policyType: "tlsa",
        policyDomain: "company-z.example",
        policyString: ["3 1 1 0123456789ABCDEF"],
        successfulSessionCount: 12,
        failures: [],
      },
      {
        policyType: "no-policy-found",
        policyDomain: "other.example",
        successfulSessionCount: 7,
        failures: [],
      },
    ],
  };
  const golden = JSON.parse(
    await Deno.readTextFile(new URL("./testdata/report.json", import.meta.url)),
  );
  assertEquals(JSON.parse(JSON.stringify(tlsRptReport(input))), golden);
});

Deno.test("lib/mtasts mailtoAddress", () => {
  const cases: [string, string | null][] = [
    ["mailto:tls@example.com", "tls@example.com"],
    ["MAILTO:tls@example.com?subject=x", "tls@example.com"],
    ["mailto:a%2Bb@example.com", "a+b@example.com"],
    ["mailto:a%2Cb@example.com", null], // "a,b": not one plain address
    ["mailto:%0D%0Ax@example.com", null],
    ["mailto:a@b@example.com", null],
    ["mailto:%E0%A4%A@example.com", null], // malformed percent-encoding
    ["https://example.com/", null],
  ];
  for (const [uri, want] of cases) assertEquals(mailtoAddress(uri), want, uri);
});
