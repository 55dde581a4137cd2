import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { reply } from "./_testing.ts";
import {
  decodeOptneg,
  decodeReply,
  decodeStrings,
  encodeAbort,
  encodeBody,
  encodeConnect,
  encodeData,
  encodeEob,
  encodeEoh,
  encodeHeader,
  encodeHelo,
  encodeMacro,
  encodeMail,
  encodeOptneg,
  encodePacket,
  encodeQuit,
  encodeQuitNc,
  encodeRcpt,
  encodeString,
  encodeUnknown,
  knownVersion,
  MILTER_CHUNK_SIZE,
  MilterError,
  offeredActions,
  offeredProtocol,
  PacketReader,
  parseReplyCode,
  SMFIC_CONNECT,
  SMFIM_ENVFROM,
  SMFIP_HDR_LEADSPC,
  SMFIP_NODATA,
  SMFIP_NOUNKNOWN,
  SMFIP_NR_BODY,
  SMFIP_SKIP,
  SMFIR_CONN_FAIL,
} from "./protocol.ts";

const bytes = (...parts: (number | string)[]) =>
  new Uint8Array(
    parts.flatMap((p) => typeof p === "number" ? [p] : [...new TextEncoder().encode(p)]),
  );

Deno.test("milter protocol: command encoders", async (t) => {
  await t.step("framing: length counts the command byte and the data", () => {
    assertEquals(encodePacket("X", bytes("ab")), bytes(0, 0, 0, 3, "X", "ab"));
    assertEquals(encodeAbort(), bytes(0, 0, 0, 1, "A"));
    assertEquals(encodeQuit(), bytes(0, 0, 0, 1, "Q"));
    assertEquals(encodeQuitNc(), bytes(0, 0, 0, 1, "K"));
    assertEquals(encodeData(), bytes(0, 0, 0, 1, "T"));
    assertEquals(encodeEoh(), bytes(0, 0, 0, 1, "N"));
    assertEquals(encodeEob(), bytes(0, 0, 0, 1, "E"));
  });

  await t.step("OPTNEG: version, actions, protocol as 32-bit big endian", () => {
    assertEquals(
      encodeOptneg({ version: 6, actions: 0x1ff, protocol: 0x1fffff }),
      bytes(0, 0, 0, 13, "O", 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff),
    );
  });

  await t.step("MACRO: command byte, then names and values", () => {
    assertEquals(
      encodeMacro(SMFIC_CONNECT, [["j", "mx"], ["{daemon_name}", "smtpd"]]),
      bytes(0, 0, 0, 27, "D", "C", "j", 0, "mx", 0, "{daemon_name}", 0, "smtpd", 0),
    );
  });

  await t.step("CONNECT for each family", () => {
    assertEquals(
      encodeConnect("mail.example", "4", 25, "192.0.2.1"),
      bytes(0, 0, 0, 27, "C", "mail.example", 0, "4", 0, 25, "192.0.2.1", 0),
    );
    assertEquals(
      encodeConnect("[2001:db8::1]", "6", 65535, "2001:db8::1"),
      bytes(0, 0, 0, 30, "C", "[2001:db8::1]", 0, "6", 0xff, 0xff, "2001:db8::1", 0),
    );
    assertEquals(
      encodeConnect("localhost", "L", 1234, "/run/x"),
      bytes(0, 0, 0, 21, "C", "localhost", 0, "L", 0, 0, "/run/x", 0),
    );
    assertEquals(
      encodeConnect("unknown", "U", 25, "x"),
      bytes(0, 0, 0, 10, "C", "unknown", 0, "U"),
    );
    // A port out of range goes as 0, as Postfix sends it.
    assertEquals(encodeConnect("h", "4", 70000, "a").subarray(8, 10), bytes(0, 0));
  });

  await t.step("HELO, MAIL, RCPT, HEADER, UNKNOWN strings", () => {
    assertEquals(encodeHelo("client"), bytes(0, 0, 0, 8, "H", "client", 0));
    assertEquals(
      encodeMail(["<a@b>", "SIZE=10"]),
      bytes(0, 0, 0, 15, "M", "<a@b>", 0, "SIZE=10", 0),
    );
    assertEquals(encodeRcpt(["<c@d>"]), bytes(0, 0, 0, 7, "R", "<c@d>", 0));
    assertEquals(
      encodeHeader("Subject", "hi\n\tthere"),
      bytes(0, 0, 0, 19, "L", "Subject", 0, "hi\n\tthere", 0),
    );
    assertEquals(encodeUnknown("XYZZY 1"), bytes(0, 0, 0, 9, "U", "XYZZY 1", 0));
  });

  await t.step("BODY: raw bytes, at most one chunk", () => {
    assertEquals(encodeBody(bytes("a\r\n")), bytes(0, 0, 0, 4, "B", "a\r\n"));
    assertEquals(encodeBody(new Uint8Array(MILTER_CHUNK_SIZE)).length, 5 + MILTER_CHUNK_SIZE);
    assertThrows(() => encodeBody(new Uint8Array(MILTER_CHUNK_SIZE + 1)), RangeError);
  });

  await t.step("a NUL inside a string is refused", () => {
    assertThrows(() => encodeString("a\0b"), MilterError, "NUL");
    assertThrows(() => encodeMail(["<a\0@b>"]), MilterError, "NUL");
  });
});

Deno.test("milter protocol: version tables", () => {
  assertEquals(offeredProtocol(2), 0x7f);
  assertEquals(offeredProtocol(3), 0x7f | SMFIP_NOUNKNOWN);
  assertEquals(offeredProtocol(4), 0x7f | SMFIP_NOUNKNOWN | SMFIP_NODATA);
  assert((offeredProtocol(6) & (SMFIP_SKIP | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC)) !== 0);
  assertEquals(offeredProtocol(6), 0x1fffff);
  assertEquals(([2, 3, 4, 6] as const).map(offeredActions), [0x1f, 0x1f, 0x3f, 0x1ff]);
  assertEquals([0, 1, 2, 3, 4, 5, 6, 9].map(knownVersion), [null, null, 2, 3, 4, 4, 6, 6]);
});

Deno.test("milter protocol: packet reader", async (t) => {
  const stream = new Uint8Array([
    ...reply.continue(),
    ...reply.addHeader("X-A", "1"),
    ...reply.replyCode("550 5.7.1 no"),
  ]);

  await t.step("one byte at a time", () => {
    const r = new PacketReader();
    const got: string[] = [];
    for (const b of stream) {
      r.push(new Uint8Array([b]));
      for (let p = r.next(); p; p = r.next()) got.push(p.cmd);
    }
    assertEquals(got, ["c", "h", "y"]);
    assertEquals(r.buffered, 0);
  });

  await t.step("all at once, with a partial packet left", () => {
    const r = new PacketReader();
    r.push(stream);
    r.push(reply.accept().subarray(0, 3));
    assertEquals(r.next()?.cmd, "c");
    assertEquals(decodeReply(r.next()!), { kind: "addHeader", name: "X-A", value: "1" });
    assertEquals(r.next()?.cmd, "y");
    assertEquals(r.next(), null);
    assertEquals(r.buffered, 3);
  });

  await t.step("the pushed buffer may be reused", () => {
    const r = new PacketReader();
    const buf = reply.continue();
    r.push(buf.subarray(0, 2));
    buf.fill(0xff);
    r.push(reply.continue().subarray(2));
    assertEquals(r.next()?.cmd, "c");
  });

  await t.step("oversize length refused before the data arrives", () => {
    const r = new PacketReader(1000);
    r.push(bytes(0, 0, 3, 0xe9));
    assertThrows(() => r.next(), MilterError, "packet length 1001 exceeds the limit of 1000");
  });

  await t.step("length 0 refused", () => {
    const r = new PacketReader();
    r.push(bytes(0, 0, 0, 0));
    assertThrows(() => r.next(), MilterError, "bad packet length 0");
  });
});

Deno.test("milter protocol: reply decoders", async (t) => {
  const decode = (packet: Uint8Array) => {
    const r = new PacketReader();
    r.push(packet);
    return decodeReply(r.next()!);
  };

  await t.step("each reply", () => {
    for (const kind of ["continue", "accept", "reject", "tempfail", "discard", "skip"] as const) {
      assertEquals(decode(reply[kind]()), { kind });
    }
    assertEquals(decode(reply.progress()), { kind: "progress" });
    assertEquals(decode(reply.shutdown()), { kind: "shutdown" });
    assertEquals(decode(reply.replyCode("451 4.3.0 later")), {
      kind: "replyCode",
      reply: { code: 451, dsn: "4.3.0", text: "later" },
    });
    assertEquals(decode(reply.insertHeader(0, "X-B", " v")), {
      kind: "insertHeader",
      index: 0,
      name: "X-B",
      value: " v",
    });
    assertEquals(decode(reply.changeHeader(2, "X-C", "")), {
      kind: "changeHeader",
      index: 2,
      name: "X-C",
      value: "",
    });
    assertEquals(decode(reply.addRcpt("<x@y>")), { kind: "addRcpt", address: "<x@y>" });
    assertEquals(decode(reply.addRcptPar("<x@y>", "NOTIFY=NEVER")), {
      kind: "addRcptPar",
      address: "<x@y>",
      args: "NOTIFY=NEVER",
    });
    assertEquals(decode(reply.addRcptPar("<x@y>")), { kind: "addRcptPar", address: "<x@y>" });
    assertEquals(decode(reply.deleteRcpt("<x@y>")), { kind: "deleteRcpt", address: "<x@y>" });
    assertEquals(decode(reply.changeFrom("<s@y>", "SIZE=1")), {
      kind: "changeFrom",
      address: "<s@y>",
      args: "SIZE=1",
    });
    assertEquals(decode(reply.replaceBody("new\r\n")), {
      kind: "replaceBody",
      chunk: bytes("new\r\n"),
    });
    assertEquals(decode(reply.quarantine("spam")), { kind: "quarantine", reason: "spam" });
  });

  await t.step("OPTNEG reply with symbol lists", () => {
    const r = new PacketReader();
    r.push(reply.optneg({ version: 6, actions: 3, protocol: 4, symlists: [[SMFIM_ENVFROM, "i"]] }));
    assertEquals(decodeOptneg(r.next()!.data), {
      version: 6,
      actions: 3,
      protocol: 4,
      symlists: [[2, "i"]],
    });
    assertThrows(() => decodeOptneg(bytes(0, 0, 0, 6, 0, 0)), MilterError, "too short");
    assertThrows(
      () => decodeOptneg(new Uint8Array([...new Uint8Array(12), 0, 0, 0, 1, 0x41])),
      MilterError,
      "NUL",
    );
  });

  await t.step("malformed replies", () => {
    assertThrows(() => decode(reply.packet("c", bytes("x"))), MilterError, "1 unexpected data");
    assertThrows(() => decode(reply.packet("h", bytes("X-A", 0, "v"))), MilterError, "NUL");
    assertThrows(() => decode(reply.packet("m", bytes(0, 0))), MilterError, "too short");
    assertThrows(
      () => decode(reply.packet("-", bytes("a", 0, "b", 0))),
      MilterError,
      "unexpected data",
    );
    assertThrows(() => decode(reply.packet(SMFIR_CONN_FAIL)), MilterError, "SMFIR_CONN_FAIL");
    assertThrows(() => decode(reply.packet("Z")), MilterError, "unknown reply 0x5a");
    assertThrows(
      () => decode(reply.packet("y", bytes("550 a", 0, "b", 0))),
      MilterError,
      "NUL character",
    );
  });

  await t.step("NUL-terminated strings", () => {
    assertEquals(decodeStrings(bytes("a", 0, "", 0, "bc", 0)), ["a", "", "bc"]);
    assertEquals(decodeStrings(new Uint8Array(0)), []);
    assertThrows(() => decodeStrings(bytes("a", 0, "b")), MilterError, "NUL");
  });
});

Deno.test("milter protocol: SMFIR_REPLYCODE text", async (t) => {
  await t.step("code, enhanced code and text", () => {
    assertEquals(parseReplyCode("550 5.7.1 Spam detected"), {
      code: 550,
      dsn: "5.7.1",
      text: "Spam detected",
    });
    assertEquals(parseReplyCode("452 4.3.1"), { code: 452, dsn: "4.3.1", text: "" });
  });

  await t.step("without enhanced code: class.0.0", () => {
    assertEquals(parseReplyCode("554 No thanks"), { code: 554, dsn: "5.0.0", text: "No thanks" });
    // A digit that starts the text is fine when it is of the reply's class.
    assertEquals(parseReplyCode("550 5 apples"), { code: 550, dsn: "5.0.0", text: "5 apples" });
  });

  await t.step("multi-line (smfi_setmlreply), CRLF at the end tolerated", () => {
    assertEquals(
      parseReplyCode("550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n"),
      { code: 550, dsn: "5.7.1", text: "first\nsecond\nthird" },
    );
    assertEquals(parseReplyCode("421-a\r\n421 b"), { code: 421, dsn: "4.0.0", text: "a\nb" });
  });

  await t.step("doubled percent signs", () => {
    assertEquals(parseReplyCode("550 5.7.1 100%% sure, 50% not").text, "100% sure, 50 not");
  });

  await t.step("malformed replies", () => {
    for (
      const bad of [
        "",
        "550",
        "250 2.0.0 ok",
        "350 go on",
        "55 short",
        "550:colon",
        "550 4.7.1 class mismatch",
        "450 5.7.1 class mismatch",
        "550-only continuation",
        "550-5.7.1 a\r\n550-5.7.1 b",
        "550 5.7.1 a\r\n550 5.7.1 b",
        "550-a\r\n451 b",
        "550 bell\x07",
        "550 a\rb",
        "5500 x",
      ]
    ) {
      let err: unknown = null;
      try {
        parseReplyCode(bad);
      } catch (e) {
        err = e;
      }
      assert(err instanceof MilterError, `accepted ${JSON.stringify(bad)}`);
      assert(err.message.startsWith("SMFIR_REPLYCODE: "));
    }
  });
});

Deno.test("milter protocol: property: random bytes only ever give MilterError", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
      fc.integer({ min: 1, max: 200 }),
      (chunks, max) => {
        const r = new PacketReader(max);
        try {
          for (const c of chunks) {
            r.push(c);
            for (let p = r.next(); p; p = r.next()) {
              try {
                decodeReply(p);
              } catch (e) {
                if (!(e instanceof MilterError)) throw e;
              }
              if (p.cmd === "O") {
                try {
                  decodeOptneg(p.data);
                } catch (e) {
                  if (!(e instanceof MilterError)) throw e;
                }
              }
            }
          }
        } catch (e) {
          if (!(e instanceof MilterError)) throw e;
        }
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("milter protocol: property: packets survive any split", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          cmd: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
          data: fc.uint8Array({ maxLength: 300 }),
        }),
        { maxLength: 10 },
      ),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
      (packets, cuts) => {
        const stream = new Uint8Array(packets.flatMap((p) => [...encodePacket(p.cmd, p.data)]));
        const r = new PacketReader();
        const got: { cmd: string; data: Uint8Array }[] = [];
        for (let off = 0, i = 0; off < stream.length; i++) {
          const n = cuts[i % cuts.length];
          r.push(stream.subarray(off, off + n));
          off += n;
          for (let p = r.next(); p; p = r.next()) got.push({ cmd: p.cmd, data: p.data.slice() });
        }
        assertEquals(got, packets);
      },
    ),
  );
});
