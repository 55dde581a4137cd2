/**
 * The Delivered-To addresses of a queued message's header section, for
 * the delivery agents' mail loop checks (local, virtual, pipe with flag D): a
 * message that already carries `Delivered-To: RECIPIENT` bounces 5.4.6.
 * Reads no further than the header section, at most `maxBytes`.
 */
import { headerAddress } from "../address/mod.ts";
import { HeaderSplitter } from "../mime/mod.ts";
import type { QueueFile } from "../queue/mod.ts";

/** Lowercased Delivered-To values (angle brackets removed). */
export async function deliveredTo(file: QueueFile, maxBytes: number): Promise<Set<string>> {
  const split = new HeaderSplitter({ maxBytes });
  let headers = null;
  for await (const chunk of file.content()) {
    const r = split.push(chunk);
    if (r.done) {
      headers = r.headers!;
      break;
    }
  }
  headers ??= split.end().headers;
  const out = new Set<string>();
  for (const h of headers) {
    if (h.name.toLowerCase() === "delivered-to") {
      out.add(h.value.trim().replace(/^<(.*)>$/, "$1").toLowerCase());
    }
  }
  return out;
}

/** True when the set holds the address, bare or in the quoted form our agents write. */
export function isDeliveredTo(delivered: Set<string>, address: string): boolean {
  return delivered.has(address.toLowerCase()) ||
    delivered.has(headerAddress(address).toLowerCase());
}
