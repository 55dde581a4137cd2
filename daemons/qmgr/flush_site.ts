/**
 * postqueue -s SITE in qmgr: which deferred messages wait for a site.
 *
 * Postfix's flush(8) keeps a log of queue ids per recipient domain and
 * touches those deferred files when a site is flushed. Postwarden has no
 * flush service and no per-site logs: qmgr reads the envelope of each
 * deferred message instead (a few KiB each; a flush is an admin's rare
 * request) and takes those with a recipient not yet delivered whose domain
 * is SITE (case-insensitive; an address literal `[1.2.3.4]` is the domain
 * of `user@[1.2.3.4]`), as Postfix's flush_add() records them. Whether a
 * site may be flushed at all (fast_flush_domains) is postqueue's check, as
 * the flush service's in Postfix; asking qmgr directly gains nothing that
 * `postqueue -f`, open to every local user, does not give.
 *
 * Does no scheduling: the caller activates or touches the ids returned.
 *
 * @module
 */
import { isQueueId, type QueueDir, QueueFile } from "../../lib/queue/mod.ts";

/** The domain of an address (after its last "@"), lower-cased; "" for none. */
function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? "" : address.slice(at + 1).toLowerCase();
}

/**
 * Queue ids in `deferred/` with a pending recipient in `site`, in queue id
 * (arrival) order. A file that vanished or cannot be read is skipped: qmgr
 * moves a damaged file aside when it next takes it.
 */
export async function deferredForSite(q: QueueDir, site: string): Promise<string[]> {
  const want = site.toLowerCase();
  const ids: string[] = [];
  for await (const e of Deno.readDir(q.dir("deferred"))) {
    if (e.isFile && isQueueId(e.name)) ids.push(e.name);
  }
  const out: string[] = [];
  let n = 0;
  for (const id of ids.sort()) {
    // Opens are synchronous: let deliveries in progress run between batches.
    if (++n % 200 === 0) await new Promise((r) => setTimeout(r, 0));
    let f: QueueFile;
    try {
      f = await QueueFile.open(q.path("deferred", id));
    } catch {
      continue;
    }
    try {
      if (f.head.recipients.some((r) => !r.done && domainOf(r.address) === want)) out.push(id);
    } finally {
      f.close();
    }
  }
  return out;
}
