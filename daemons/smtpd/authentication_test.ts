/**
 * The ARC override of a DMARC fail (authentication.ts trustedArcPass):
 * only a passing chain whose newest seal is a trusted sealer's, and whose
 * ARC-Authentication-Results say dmarc=pass. The whole path (smtpd,
 * cleanup's seal, postwarden_reject_dmarc_fail) is in
 * tests/interop/dmarc_test.ts.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import type { ArcSetInfo, ArcValidation } from "../../lib/arc/mod.ts";
import { trustedArcPass } from "./authentication.ts";

function set(instance: number, sealDomain: string, authResults: string): ArcSetInfo {
  return {
    instance,
    sealDomain,
    sealSelector: "arc",
    amsDomain: sealDomain,
    amsSelector: "arc",
    cv: instance === 1 ? "none" : "pass",
    authResults,
  };
}

Deno.test("trustedArcPass: which sealer may override a DMARC fail", () => {
  const chain = (status: ArcValidation["status"], ...sets: ArcSetInfo[]): ArcValidation => ({
    status,
    instance: sets.length,
    reason: "",
    sets,
  });
  const trusted = ["lists.example"];
  const passed = "mx.lists.example; spf=fail smtp.mailfrom=x@y; dmarc=pass header.from=bank.test";
  assertEquals(
    trustedArcPass(chain("pass", set(1, "lists.example", passed)), trusted),
    "lists.example",
  );
  // Untrusted, failing, a trusted sealer that saw no DMARC pass, or not the newest seal: none.
  assertEquals(trustedArcPass(chain("pass", set(1, "other.example", passed)), trusted), null);
  assertEquals(trustedArcPass(chain("fail", set(1, "lists.example", passed)), trusted), null);
  assertEquals(
    trustedArcPass(chain("pass", set(1, "lists.example", "mx; dmarc=fail; spf=pass")), trusted),
    null,
  );
  assertEquals(
    trustedArcPass(
      chain("pass", set(1, "lists.example", passed), set(2, "other.example", passed)),
      trusted,
    ),
    null,
  );
  assertEquals(trustedArcPass(chain("pass", set(1, "lists.example", passed)), []), null);
});
