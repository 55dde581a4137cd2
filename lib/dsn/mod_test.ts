/**
 * Tests for buildDsn(): each notification is parsed back (MIME boundaries,
 * the RFC 3464 per-message and per-recipient fields, CRLF only, lines under
 * 998 characters) and compared with golden files in testdata/. Regenerate
 * those with `UPDATE_GOLDEN=1 deno test --allow-all lib/dsn` and review the diff.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
  assertThrows,
} from "../../tests/helpers/assert.ts";
import { findHeader, type HeaderField, HeaderSplitter } from "../mime/mod.ts";
import { buildDsn, DsnError, type DsnInput } from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function base(over: Partial<DsnInput> = {}): DsnInput {
  return {
    kind: "failure",
    reportingMta: "mx.example.com",
    mailName: "Postwarden",
    queueId: "4ABC123DEF",
    arrivalDate: new Date(Date.UTC(2026, 10, 30, 16, 28, 40)),
    originalSender: "alice@example.org",
    recipient: "alice@example.org",
    from: "MAILER-DAEMON@mx.example.com",
    recipients: [
      {
        address: "nobody@example.net",
        action: "failed",
        status: "5.1.1",
        diagnostic: "smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: " +
          "User unknown in virtual mailbox table",
        remoteMta: "mx.example.net",
        reason: "host mx.example.net[192.0.2.25] said: 550 5.1.1 <nobody@example.net>: " +
          "Recipient address rejected: User unknown in virtual mailbox table " +
          "(in reply to RCPT TO command)",
      },
      {
        address: "bob@example.com",
        originalRecipient: "team@example.com",
        action: "failed",
        status: "5.2.2",
        reason: "maildir delivery failed: mailbox full",
      },
    ],
    originalHeaders: enc.encode(
      "Received: from client.example.org (client.example.org [192.0.2.1])\r\n" +
        "\tby mx.example.com (Postwarden) with ESMTP id 4ABC123DEF\r\n" +
        "\tfor <nobody@example.net>; Mon, 30 Nov 2026 16:28:40 +0000 (UTC)\r\n" +
        "From: Alice <alice@example.org>\r\n" +
        "To: nobody@example.net, team@example.com\r\n" +
        "Subject: hello\r\n" +
        "Message-ID: <abc@example.org>\r\n\r\n",
    ),
    originalBody: enc.encode("Hello there.\r\n"),
    returnFull: false,
    date: new Date(Date.UTC(2026, 10, 30, 16, 28, 42)),
    messageId: "20261130162842.5XYZ@mx.example.com",
    ...over,
  };
}

interface Part {
  headers: HeaderField[];
  body: string;
}

interface Parsed {
  text: string;
  headers: HeaderField[];
  boundary: string;
  parts: Part[];
  /** Per-message fields, then one group per recipient (names lower-cased). */
  groups: Map<string, string>[];
}

function splitHeaders(bytes: Uint8Array): { headers: HeaderField[]; body: string } {
  const s = new HeaderSplitter({ maxBytes: 1 << 20 });
  const r = s.push(bytes);
  const headers = r.done ? r.headers! : s.end().headers;
  const rest = r.done ? r.rest! : new Uint8Array(0);
  return { headers, body: dec.decode(rest).replace(/^\r\n/, "") };
}

/** Parses a notification back and checks the rules every one must follow. */
function parse(dsn: Uint8Array): Parsed {
  const text = dec.decode(dsn);
  assert(text.endsWith("\r\n"), "ends with CRLF");
  assert(!/[\r\n]/.test(text.replace(/\r\n/g, "")), "CRLF line ends only");
  for (const line of text.split("\r\n")) assert(line.length < 998, `line of ${line.length}`);

  const top = splitHeaders(dsn);
  for (
    const name of ["From", "To", "Subject", "Date", "Message-Id", "MIME-Version", "Auto-Submitted"]
  ) {
    assert(findHeader(top.headers, name), `header ${name}`);
  }
  const ct = findHeader(top.headers, "content-type")!.value;
  assertMatch(ct, /^multipart\/report; report-type=delivery-status;\s*boundary="[^"]+"$/);
  const boundary = ct.match(/boundary="([^"]+)"/)![1];

  const delimiter = `\r\n--${boundary}`;
  const body = "\r\n" + top.body;
  const pieces = body.split(delimiter);
  assertEquals(pieces.pop(), "--\r\n", "closing delimiter ends the message");
  assertEquals(pieces.shift(), "\r\nThis is a MIME-encapsulated message.\r\n");
  const parts = pieces.map((p) => {
    assert(p.startsWith("\r\n"), "delimiter line ends right after the boundary");
    return splitHeaders(enc.encode(p.slice(2)));
  });
  assertEquals(parts.length, 3);
  assertMatch(findHeader(parts[0].headers, "content-type")!.value, /^text\/plain; charset=/);
  assertMatch(
    findHeader(parts[1].headers, "content-type")!.value,
    /^message\/(global-)?delivery-status$/,
  );

  // RFC 3464 section 2: groups of fields separated by blank lines.
  const groups = parts[1].body.replace(/\r\n$/, "").split("\r\n\r\n").map((g) => {
    const fields = new Map<string, string>();
    for (const h of splitHeaders(enc.encode(g + "\r\n")).headers) {
      assert(!fields.has(h.name.toLowerCase()), `duplicate ${h.name}`);
      fields.set(h.name.toLowerCase(), h.value.replace(/\s+/g, " "));
    }
    return fields;
  });
  assertMatch(groups[0].get("reporting-mta") ?? "", /^dns; \S+$/);
  assert(groups.length >= 2, "at least one recipient");
  for (const g of groups.slice(1)) {
    assertMatch(g.get("final-recipient") ?? "", /^(rfc822|utf-8); (?:"(?:[^"\\]|\\.)*"|[^\s"])+$/);
    assertMatch(g.get("action") ?? "", /^(failed|delayed|delivered|relayed|expanded)$/);
    assertMatch(g.get("status") ?? "", /^[245]\.\d{1,3}\.\d{1,3}$/);
  }
  return { text, headers: top.headers, boundary, parts, groups };
}

async function golden(name: string, dsn: Uint8Array): Promise<void> {
  const url = new URL(`./testdata/${name}`, import.meta.url);
  if (Deno.env.get("UPDATE_GOLDEN")) await Deno.writeFile(url, dsn);
  assertEquals(dec.decode(dsn), dec.decode(await Deno.readFile(url)), `golden ${name}`);
}

const header = (p: { headers: HeaderField[] }, name: string) => findHeader(p.headers, name)?.value;

Deno.test("buildDsn failure notice", async (t) => {
  const dsn = buildDsn(base());
  const p = parse(dsn);

  await t.step("matches the golden file", () => golden("failure.eml", dsn));

  await t.step("writes Postfix's message header", () => {
    assertEquals(p.headers.map((h) => h.name), [
      "Date",
      "From",
      "Subject",
      "To",
      "Auto-Submitted",
      "MIME-Version",
      "Content-Type",
      "Content-Transfer-Encoding",
      "Message-Id",
    ]);
    assertEquals(header(p, "from"), "Mail Delivery System <MAILER-DAEMON@mx.example.com>");
    assertEquals(header(p, "subject"), "Undelivered Mail Returned to Sender");
    assertEquals(header(p, "auto-submitted"), "auto-replied");
    assertEquals(header(p, "date"), "Mon, 30 Nov 2026 16:28:42 +0000 (UTC)");
    assertEquals(header(p, "message-id"), "<20261130162842.5XYZ@mx.example.com>");
    assertEquals(p.boundary, "4ABC123DEF.1796056122/mx.example.com");
  });

  await t.step("explains each recipient in the text part, wrapped like Postfix", () => {
    const body = p.parts[0].body;
    assert(body.startsWith("This is the mail system at host mx.example.com.\r\n\r\nI'm sorry"));
    assertStringIncludes(
      body,
      "\r\n<nobody@example.net>: host mx.example.net[192.0.2.25] said: 550 5.1.1\r\n" +
        "    <nobody@example.net>: Recipient address rejected: User unknown in virtual\r\n" +
        "    mailbox table (in reply to RCPT TO command)\r\n",
    );
    assertStringIncludes(body, "<bob@example.com> (expanded from <team@example.com>): maildir");
    for (const line of body.split("\r\n")) assert(line.length <= 79, line);
  });

  await t.step("writes the per-message and per-recipient fields", () => {
    const [msg, r1, r2] = p.groups;
    assertEquals([...msg.entries()], [
      ["reporting-mta", "dns; mx.example.com"],
      ["x-postwarden-queue-id", "4ABC123DEF"],
      ["x-postwarden-sender", "rfc822; alice@example.org"],
      ["arrival-date", "Mon, 30 Nov 2026 16:28:40 +0000 (UTC)"],
    ]);
    assertEquals(r1.get("final-recipient"), "rfc822; nobody@example.net");
    assertEquals(r1.get("remote-mta"), "dns; mx.example.net");
    assertEquals(r1.get("status"), "5.1.1");
    assertEquals(
      r1.get("diagnostic-code"),
      "smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
    );
    assert(!r1.has("original-recipient"), "no Original-Recipient without one (RFC 3464 6.3)");
    assertEquals(r2.get("original-recipient"), "rfc822; team@example.com");
    assertEquals(r2.get("diagnostic-code"), "X-Postwarden; maildir delivery failed: mailbox full");
    assert(!r2.has("remote-mta"));
  });

  await t.step("returns the original headers as text/rfc822-headers", () => {
    assertEquals(header(p.parts[2], "content-description"), "Undelivered Message Headers");
    assertEquals(header(p.parts[2], "content-type"), "text/rfc822-headers");
    assert(p.parts[2].body.startsWith("Return-Path: <alice@example.org>\r\nReceived: from client"));
    assert(p.parts[2].body.endsWith("Message-ID: <abc@example.org>\r\n"));
    assert(!p.text.includes("Hello there."), "no body without RET=FULL");
  });

  await t.step("says failed even when a recipient says otherwise", () => {
    const r = base().recipients[1];
    const q = parse(buildDsn(base({ recipients: [{ ...r, action: "delayed" }] })));
    assertEquals(q.groups[1].get("action"), "failed");
  });
});

Deno.test("buildDsn delay and success notices", async (t) => {
  const arrival = new Date(Date.UTC(2026, 10, 30, 12, 0, 0));
  const delay = buildDsn(base({
    kind: "delay",
    arrivalDate: arrival,
    recipients: [{
      address: "slow@example.net",
      action: "delayed",
      status: "4.4.1",
      diagnostic: undefined,
      reason: "connect to mx.example.net[192.0.2.25]:25: Connection refused",
    }],
  }));
  const success = buildDsn(base({
    kind: "success",
    recipients: [
      {
        address: "bob@example.com",
        action: "delivered",
        status: "2.0.0",
        reason: "delivered to maildir",
      },
      {
        address: "far@example.net",
        action: "relayed",
        status: "2.0.0",
        remoteMta: "dns; mx.example.net",
        diagnostic: "smtp; 250 2.0.0 Ok: queued as 12345",
        reason: "delivery via mx.example.net[192.0.2.25]:25: 250 2.0.0 Ok: queued as 12345",
      },
    ],
  }));

  await t.step("match the golden files", async () => {
    await golden("delay.eml", delay);
    await golden("success.eml", success);
  });

  await t.step("delay: subject, warning text, action and Will-Retry-Until", () => {
    const p = parse(delay);
    assertEquals(header(p, "subject"), "Delayed Mail (still being retried)");
    assertStringIncludes(
      p.parts[0].body,
      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
    );
    assertStringIncludes(
      p.parts[0].body,
      "for more than 4 hour(s).\r\nIt will be retried until it is 5 day(s) old.",
    );
    assertEquals(p.groups[1].get("action"), "delayed");
    assertStringIncludes(p.text, "\r\nWill-Retry-Until: Sat,  5 Dec 2026 12:00:00 +0000 (UTC)\r\n");
    assertEquals(
      p.groups[1].get("diagnostic-code"),
      "X-Postwarden; connect to mx.example.net[192.0.2.25]:25: Connection refused",
    );
    assertEquals(header(p.parts[2], "content-description"), "Undelivered Message Headers");
  });

  await t.step("delay: quotes the configured times", () => {
    const p = parse(
      buildDsn(base({ kind: "delay", delayWarningTime: 7200, maximalQueueLifetime: 3 * 86400 })),
    );
    assertStringIncludes(
      p.parts[0].body,
      "more than 2 hour(s).\r\nIt will be retried until it is 3 day(s) old.",
    );
  });

  await t.step("success: subject, actions kept, no 'Undelivered'", () => {
    const p = parse(success);
    assertEquals(header(p, "subject"), "Successful Mail Delivery Report");
    assertStringIncludes(
      p.parts[0].body,
      "Your message was successfully delivered to the destination(s)",
    );
    assertEquals(p.groups.slice(1).map((g) => g.get("action")), ["delivered", "relayed"]);
    assertEquals(p.groups[2].get("remote-mta"), "dns; mx.example.net");
    assertEquals(header(p.parts[2], "content-description"), "Message Headers");
    assert(!p.groups[1].has("will-retry-until"));
  });
});

Deno.test("buildDsn returned content", async (t) => {
  await t.step("RET=FULL returns the whole message as message/rfc822", async () => {
    const dsn = buildDsn(base({ returnFull: true }));
    await golden("failure_full.eml", dsn);
    const p = parse(dsn);
    assertEquals(header(p.parts[2], "content-type"), "message/rfc822");
    assertEquals(header(p.parts[2], "content-description"), "Undelivered Message");
    const inner = splitHeaders(enc.encode(p.parts[2].body));
    assertEquals(inner.headers[0].name, "Return-Path");
    assertEquals(header(inner, "subject"), "hello");
    assertEquals(inner.body, "Hello there.\r\n");
  });

  await t.step("RET=FULL without a body falls back to headers", () => {
    const p = parse(buildDsn(base({ returnFull: true, originalBody: undefined })));
    assertEquals(header(p.parts[2], "content-type"), "text/rfc822-headers");
  });

  await t.step("keeps trailing empty lines of the body", () => {
    const p = parse(
      buildDsn(base({ returnFull: true, originalBody: enc.encode("a\r\n\r\n\r\n") })),
    );
    assert(p.parts[2].body.endsWith("\r\n\r\na\r\n\r\n\r\n"), JSON.stringify(p.parts[2].body));
  });

  await t.step("an empty body still gets its separator line", () => {
    const p = parse(buildDsn(base({ returnFull: true, originalBody: new Uint8Array(0) })));
    assert(p.parts[2].body.endsWith("Message-ID: <abc@example.org>\r\n\r\n"));
  });

  await t.step("copies 8-bit content byte for byte and marks it 8bit", () => {
    const body = Uint8Array.of(0x48, 0xe9, 0xff, 0x80, 0x0d, 0x0a);
    const headers = enc.encode("Subject: caf\u00e9\r\n");
    const dsn = buildDsn(base({ returnFull: true, originalBody: body, originalHeaders: headers }));
    const p = parse(dsn);
    assertEquals(header(p, "content-transfer-encoding"), "8bit");
    assertEquals(header(p.parts[0], "content-type"), "text/plain; charset=utf-8");
    assertEquals(header(p.parts[2], "content-transfer-encoding"), "8bit");
    const at = dsn.findIndex((_, i) => dsn[i] === 0x48 && dsn[i + 1] === 0xe9);
    assertEquals([...dsn.subarray(at, at + 6)], [...body]);
    assert(dec.decode(dsn).includes("Subject: caf\u00e9\r\n"));
  });

  await t.step("repairs bare LF line ends in the original", () => {
    const p = parse(buildDsn(base({
      returnFull: true,
      originalHeaders: enc.encode("Subject: x\nX-A: y\n\n"),
      originalBody: enc.encode("a\nb"),
    })));
    assertStringIncludes(p.parts[2].body, "Subject: x\r\nX-A: y\r\n\r\na\r\nb\r\n");
  });

  await t.step("changes the boundary when the content contains it", () => {
    const body = enc.encode("--4ABC123DEF.1796056122/mx.example.com--\r\n");
    const p = parse(buildDsn(base({ returnFull: true, originalBody: body })));
    assertEquals(p.boundary, "4ABC123DEF.1796056122/mx.example.com.1");
    assertStringIncludes(p.parts[2].body, "\r\n--4ABC123DEF.1796056122/mx.example.com--\r\n");
  });
});

Deno.test("buildDsn edge cases", async (t) => {
  await t.step("keeps lines under 998 characters for huge diagnostics", () => {
    const long = "x".repeat(3000);
    const p = parse(buildDsn(base({
      recipients: [{
        address: "a@example.net",
        action: "failed",
        status: "5.0.0",
        diagnostic: `smtp; 550 ${long}`,
        reason: long,
      }],
    })));
    assertStringIncludes(p.groups[1].get("diagnostic-code")!.replace(/ /g, ""), "x".repeat(2000));
  });

  await t.step("masks line breaks and control characters in free text", () => {
    const p = parse(buildDsn(base({
      envId: "env\r\nBcc: x",
      recipients: [{
        address: "a@example.net",
        action: "failed",
        status: "5.0.0",
        diagnostic: "smtp; 550 bad\r\nX-Injected: yes",
        reason: "bad\r\n\r\n--boundary",
      }],
    })));
    assertEquals(p.groups[0].get("original-envelope-id"), "env??Bcc: x");
    assertEquals(p.groups[1].get("diagnostic-code"), "smtp; 550 bad??X-Injected: yes");
    assert(!p.groups[1].has("x-injected"));
    assertStringIncludes(p.parts[0].body, "<a@example.net>: bad????--boundary");
  });

  await t.step("writes Original-Envelope-Id and a typed ORCPT as given", () => {
    const p = parse(buildDsn(base({
      envId: "QQ314159",
      recipients: [{
        address: "x@example.net",
        originalRecipient: "rfc822;X@Example.NET",
        action: "failed",
        status: "5.1.1",
        reason: "unknown",
      }],
    })));
    assertEquals(p.groups[0].get("original-envelope-id"), "QQ314159");
    assertEquals(p.groups[1].get("original-recipient"), "rfc822;X@Example.NET");
    assert(!p.parts[0].body.includes("expanded from"), "same address, other case");
  });

  await t.step("reports the null sender as MAILER-DAEMON, returns Return-Path <>", () => {
    const p = parse(buildDsn(base({ originalSender: "", recipient: "postmaster@mx.example.com" })));
    assertEquals(p.groups[0].get("x-postwarden-sender"), "rfc822; MAILER-DAEMON");
    assert(p.parts[2].body.startsWith("Return-Path: <>\r\n"));
  });

  await t.step("postmaster copy: own subject, auto-generated, no template, headers only", () => {
    const p = parse(
      buildDsn(
        base({ postmasterCopy: true, returnFull: true, recipient: "postmaster@mx.example.com" }),
      ),
    );
    assertEquals(header(p, "subject"), "Postmaster Copy: Undelivered Mail");
    assertEquals(header(p, "auto-submitted"), "auto-generated");
    assert(
      p.parts[0].body.startsWith("\r\n<nobody@example.net>: host"),
      JSON.stringify(p.parts[0].body),
    );
    assertEquals(header(p.parts[2], "content-type"), "text/rfc822-headers");
    const delay = parse(buildDsn(base({ kind: "delay", postmasterCopy: true })));
    assertEquals(header(delay, "subject"), "Postmaster Warning: Delayed Mail");
  });

  await t.step("quotes a local part that is not a dot-atom", () => {
    const p = parse(
      buildDsn(
        base({ originalSender: "john smith@example.org", recipient: "john smith@example.org" }),
      ),
    );
    assertEquals(header(p, "to"), '"john smith"@example.org');
    assertEquals(p.groups[0].get("x-postwarden-sender"), 'rfc822; "john smith"@example.org');
  });

  await t.step("quotes addresses everywhere, masks CR and LF in them", () => {
    const p = parse(buildDsn(base({
      originalSender: "eve\r\nBcc: x@example.org",
      recipient: "eve\r\nBcc: x@example.org",
      recipients: [{
        address: "a b@example.net",
        originalRecipient: "list member@example.com",
        action: "failed",
        status: "5.1.1",
        reason: "unknown",
      }, {
        address: "v@t.example> ORCPT=rfc822;x@o.example",
        originalRecipient: "rfc822;x@o.example\r\nX-Injected: yes",
        action: "failed",
        status: "5.1.1",
        reason: "unknown",
      }],
    })));
    assertEquals(header(p, "to"), '"eve??Bcc: x"@example.org');
    assertEquals(p.groups[0].get("x-postwarden-sender"), 'rfc822; "eve??Bcc: x"@example.org');
    assert(p.parts[2].body.startsWith('Return-Path: <"eve??Bcc: x"@example.org>\r\n'));
    assertEquals(p.groups[1].get("final-recipient"), 'rfc822; "a b"@example.net');
    assertEquals(p.groups[1].get("original-recipient"), 'rfc822; "list member"@example.com');
    assertEquals(
      p.groups[2].get("final-recipient"),
      'rfc822; "v@t.example> ORCPT=rfc822;x"@o.example',
    );
    assertEquals(p.groups[2].get("original-recipient"), "rfc822;x@o.example??X-Injected: yes");
    assert(!p.groups[2].has("x-injected"));
    assertStringIncludes(
      p.parts[0].body,
      '<"a b"@example.net> (expanded from <"list member"@example.com>): unknown',
    );
    assertStringIncludes(p.parts[0].body, '<"v@t.example> ORCPT=rfc822;x"@o.example> (expanded');
  });

  await t.step("no 'expanded from' when the ORCPT names the recipient in quoted form", () => {
    const p = parse(buildDsn(base({
      recipients: [{
        address: "a b@example.net",
        originalRecipient: 'rfc822;"a b"@example.net',
        action: "failed",
        status: "5.1.1",
        reason: "unknown",
      }],
    })));
    assertStringIncludes(p.parts[0].body, '\r\n<"a b"@example.net>: unknown');
  });

  await t.step("uses utf-8 address types and message/global-* for SMTPUTF8 addresses", () => {
    const p = parse(buildDsn(base({
      recipients: [{
        address: "j\u00f6rg@b\u00fccher.example",
        action: "failed",
        status: "5.1.1",
        reason: "unknown",
      }],
    })));
    assertEquals(header(p.parts[1], "content-type"), "message/global-delivery-status");
    assertEquals(header(p.parts[2], "content-type"), "message/global-headers");
    assertEquals(p.groups[1].get("final-recipient"), "utf-8; j\u00f6rg@b\u00fccher.example");
    assertEquals(header(p, "content-transfer-encoding"), "8bit");
  });

  await t.step("writes Received: when the notification's queue id is known", () => {
    const p = parse(buildDsn(base({ dsnQueueId: "5XYZ", mailName: "Post warden" })));
    assertEquals(p.headers[0].name, "Received");
    assertEquals(
      p.headers[0].value,
      "by mx.example.com (Post warden)\tid 5XYZ; Mon, 30 Nov 2026 16:28:42 +0000 (UTC)",
    );
    assert(p.groups[0].has("x-post-warden-queue-id"), "mail_name made an atom");
  });

  await t.step("uses the given boundary, time zone and bracketed Message-Id", () => {
    const p = parse(buildDsn(base({ boundary: "b0und", tzOffsetMinutes: 60, messageId: "<m@x>" })));
    assertEquals(p.boundary, "b0und");
    assertEquals(header(p, "date"), "Mon, 30 Nov 2026 17:28:42 +0100");
    assertEquals(header(p, "message-id"), "<m@x>");
  });

  await t.step("rejects a bad status and an empty recipient list", () => {
    assertThrows(() => buildDsn(base({ recipients: [] })), DsnError);
    const r = base().recipients[0];
    assertThrows(
      () => buildDsn(base({ recipients: [{ ...r, status: "550" }] })),
      DsnError,
      "bad status",
    );
  });
});
